//! Smooch's error body on the answers hyper makes by itself.
//!
//! hyper answers a request it cannot parse before the router sees it: 414
//! for a path and query over 65534 bytes (the most an `http::Uri` holds),
//! 431 for a head over its buffer limit (about 400 KiB) or with more than
//! 100 headers, 400 for a malformed head. Those answers are a bare head with
//! `content-length: 0`, and hyper has no hook to give them a body. So every
//! connection is wrapped in [`ErrorBodyIo`], which recognises such a head on
//! its way out and sends Smooch's `{"error":{"code","description"}}` answer
//! in its place (same status and headers, `connection: close`, as hyper
//! closes the connection after them anyway).
//!
//! Recognising it is exact enough: a write that is nothing but one response
//! head, for a 4xx or 5xx, with `content-length: 0`. The router never makes
//! such an answer (every error it makes has a body), and a body can never
//! look like one (JSON escapes CR and LF, and bodies do not start with
//! `HTTP/1.`). Writes are not vectored, so hyper hands each response to the
//! socket starting with its head.

use super::error::code_for;
use axum::http::StatusCode;
use smooch::models::{ErrorBody, ErrorDetail};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections are [`ErrorBodyIo`]s.
#[derive(Debug)]
pub struct ErrorBodyListener(pub TcpListener);

impl axum::serve::Listener for ErrorBodyListener {
    type Io = ErrorBodyIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (ErrorBodyIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connection that replaces hyper's bodiless error answers with Smooch's
/// error answer; everything else passes through unchanged.
#[derive(Debug)]
pub struct ErrorBodyIo<T> {
    inner: T,
    /// A replacement answer, and how much of it has been written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ErrorBodyIo<T> {
    pub fn new(inner: T) -> Self {
        ErrorBodyIo {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> ErrorBodyIo<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorBodyIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorBodyIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = with_error_body(buf) {
            this.pending = answer;
            // Whatever does not go out now goes on the next write, flush or
            // shutdown, all of which finish the replacement first.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Smooch's answer in place of `bytes`, if `bytes` is exactly one bodiless
/// error head (hyper's own answer to a request it could not parse).
fn with_error_body(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(b"HTTP/1.") {
        return None;
    }
    let head = std::str::from_utf8(bytes).ok()?.strip_suffix("\r\n\r\n")?;
    if head.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let mut bodiless = false;
    let mut kept = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            bodiless = value.trim() == "0";
        } else if !name.eq_ignore_ascii_case("content-type")
            && !name.eq_ignore_ascii_case("connection")
        {
            kept.push(line);
        }
    }
    if !bodiless {
        return None;
    }
    let description = match status {
        StatusCode::URI_TOO_LONG => {
            "The request path and query are too long (at most 65534 bytes)".to_owned()
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "The request headers are too large (at most about 400 KiB and 100 headers)".to_owned()
        }
        StatusCode::BAD_REQUEST => "Malformed HTTP request".to_owned(),
        other => other
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned(),
    };
    let body = error_body(status, description)?;
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for line in kept {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

/// The JSON body every error answer has.
fn error_body(status: StatusCode, description: String) -> Option<Vec<u8>> {
    serde_json::to_vec(&ErrorBody {
        error: ErrorDetail {
            code: code_for(status).to_owned(),
            description,
        },
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(head: &str) -> Option<String> {
        with_error_body(head.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn hypers_bodiless_error_heads_get_the_error_body() {
        let answer = rewritten(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sat, 28 Nov 2026 16:00:00 GMT\r\n\r\n",
        )
        .unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(head.contains("\r\ndate: Sat, 28 Nov 2026 16:00:00 GMT"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "request_header_fields_too_large");
    }

    #[test]
    fn everything_else_passes_through() {
        for bytes in [
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            "{\"name\":\"HTTP/1.1 400 x\"}",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(rewritten(bytes), None, "{bytes:?}");
        }
    }
}
