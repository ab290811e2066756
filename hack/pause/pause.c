/*
 * The node's pod sandbox ("pause") process, built locally by
 * `hack/controlplane.sh start DIR --node` (gcc -static, in a FROM scratch
 * image) because no registry is reachable: it holds the pod's namespaces,
 * reaps zombies (it is PID 1 when the pod shares its PID namespace) and
 * exits on SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction term = {.sa_handler = stop};
  struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigemptyset(&term.sa_mask);
  sigemptyset(&child.sa_mask);
  if (sigaction(SIGINT, &term, NULL) || sigaction(SIGTERM, &term, NULL) ||
      sigaction(SIGCHLD, &child, NULL))
    return 1;
  for (;;) pause();
}
