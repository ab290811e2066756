"""PyPI `sunshine-conversations-client` 17.0.1 (the official v2 client)
against the emulator's /v2. Run by tests/official_clients.rs. Facts cited as
"ref N" are sections of sunshine-conversations-v2.md.

Env: SMOOCH_URL, SMOOCH_KEY_ID, SMOOCH_SECRET (the account key: Basic auth).
Prints one JSON object on stdout; exits non-zero on an unexpected answer.
"""

import json
import os
import sys

import sunshine_conversations_client as sc
from sunshine_conversations_client.exceptions import (
    ApiException, BadRequestException, ForbiddenException, NotFoundException,
    UnauthorizedException)

URL = os.environ["SMOOCH_URL"]
MISSING = "0" * 24
CREDENTIALS = ["TG-BOT-TOKEN-3", "TW-AUTH-TOKEN-3", "FB-PAGE-TOKEN-3", "FB-APP-SECRET-3",
               "LINE-SECRET-3"]


def check(condition, message):
    if not condition:
        print("FAILED: " + message, file=sys.stderr)
        sys.exit(1)


def client(key_id, secret):
    return sc.ApiClient(sc.Configuration(host=URL, username=key_id, password=secret))


def expect_error(exception, status, what, call, *args, **kwargs):
    """The call raises `exception` with `status` and a v2 error body (ref 7)."""
    try:
        call(*args, **kwargs)
    except ApiException as error:
        check(type(error) is exception and error.status == status,
              "%s: expected %s %d, got %s %s: %s"
              % (what, exception.__name__, status, type(error).__name__, error.status, error.body))
        body = json.loads(error.body)
        first = (body.get("errors") or [{}])[0]
        check(isinstance(first.get("title"), str) and first["title"]
              and isinstance(first.get("code"), str) and first["code"],
              "%s: body is not {errors: [{code, title}]}: %s" % (what, error.body))
        return {"status": error.status, "code": first["code"], "title": first["title"]}
    check(False, "%s: expected %d, the call succeeded" % (what, status))


account = client(os.environ["SMOOCH_KEY_ID"], os.environ["SMOOCH_SECRET"])
apps = sc.AppsApi(account)
keys = sc.AppKeysApi(account)
out = {}

# ---- apps: create 5, page through them 2 at a time (ref 2, 3)
made = []
for i in range(5):
    app = apps.create_app(sc.AppCreateBody(
        display_name="py-v2 app %d" % i, metadata={"index": i},
        settings=sc.AppSettings(use_animal_names=(i % 2 == 0)))).app
    check(app.display_name == "py-v2 app %d" % i, "create_app displayName: %r" % app.display_name)
    check(len(app.id) == 24, "app id shape: %r" % app.id)
    check(app.metadata == {"index": i}, "metadata: %r" % app.metadata)
    check(app.settings.use_animal_names is (i % 2 == 0), "settings: %r" % app.settings)
    made.append(app.id)
# This client sends page={"after": ..., "size": 2} as JSON (ref 2, quirk PY).
pages, seen, after = [], [], None
while True:
    page = sc.Page(size=2) if after is None else sc.Page(after=after, size=2)
    answer = apps.list_apps(page=page)
    ids = [a.id for a in answer.apps]
    pages.append(ids)
    seen.extend(ids)
    check(len(ids) <= 2, "page size 2 ignored: %d apps" % len(ids))
    check(len(pages) < 10, "paging does not end: %r" % pages)
    if not answer.meta.has_more:
        break
    after = answer.meta.after_cursor
    check(after and len(after) == 24, "afterCursor: %r" % after)
check(len(seen) == len(set(seen)), "an app on two pages: %r" % pages)
check(sorted(seen) == sorted(made), "pages %r are not the 5 apps %r" % (pages, made))
check([len(p) for p in pages] == [2, 2, 1], "page sizes: %r" % pages)
out["app_pages"] = pages

app_id, other_app = made[0], made[1]
got = apps.get_app(app_id).app
check((got.id, got.display_name) == (app_id, "py-v2 app 0"), "get_app: %r" % got)
patched = apps.update_app(app_id, sc.AppUpdateBody(display_name="py-v2 renamed",
                                                   metadata={"team": "py"})).app
check(patched.display_name == "py-v2 renamed" and patched.metadata == {"team": "py"},
      "update_app: %r" % patched)
check(apps.get_app(app_id).app.display_name == "py-v2 renamed", "update not kept")
apps.delete_app(made[4])
expect_error(NotFoundException, 404, "get deleted app", apps.get_app, made[4])
out["app_id"], out["other_app_id"], out["deleted_app_id"] = app_id, other_app, made[4]

# ---- app keys (ref 4)
key = keys.create_app_key(app_id, sc.AppKeyCreateBody(display_name="py key")).key
check(key.id.startswith("app_") and key.secret and key.display_name == "py key",
      "create_app_key: %r" % key.id)
check(key.id in [k.id for k in keys.list_app_keys(app_id).keys], "list_app_keys misses the key")
fetched = keys.get_app_key(app_id, key.id).key
check((fetched.id, fetched.display_name) == (key.id, "py key"), "get_app_key: %r" % fetched)
spare = keys.create_app_key(app_id, sc.AppKeyCreateBody(display_name="spare")).key
keys.delete_app_key(app_id, spare.id)
check(spare.id not in [k.id for k in keys.list_app_keys(app_id).keys], "deleted key listed")
expect_error(NotFoundException, 404, "get deleted key", keys.get_app_key, app_id, spare.id)
out["key_id"] = key.id

# ---- integrations, with the app key's Basic auth (ref 1, 5)
as_app = client(key.id, key.secret)
integrations = sc.IntegrationsApi(as_app)
webhooks = sc.WebhooksApi(as_app)
created = {}
created["telegram"] = integrations.create_integration(
    app_id, sc.Telegram(type="telegram", token="TG-BOT-TOKEN-3")).integration
created["twilio"] = integrations.create_integration(app_id, sc.Twilio(
    type="twilio", account_sid="ACa1b4c65ee0722712fab89867cb14eac7", auth_token="TW-AUTH-TOKEN-3",
    phone_number_sid="PN0674df0ecee0c9819bca0ff0bc0a159e")).integration
created["messenger"] = integrations.create_integration(app_id, sc.Messenger(
    type="messenger", page_access_token="FB-PAGE-TOKEN-3", app_id="fb-app-3",
    app_secret="FB-APP-SECRET-3", display_name="py messenger")).integration
created["line"] = integrations.create_integration(app_id, sc.Line(
    type="line", channel_id="1462776485", channel_secret="LINE-SECRET-3")).integration
created["custom"] = integrations.create_integration(app_id, sc.Custom(
    type="custom", display_name="py custom", webhooks=[sc.Webhook(
        target="https://example.com/py-v2", triggers=["conversation:message"],
        include_full_user=True)])).integration
for kind, integration in created.items():
    # The client deserializes by `type` (discriminator): the right class is proof too.
    check(integration.type == kind and len(integration.id) == 24, "create %s: %r" % (kind, integration))
    text = integration.to_json()
    for credential in CREDENTIALS:
        check(credential not in text, "%s answer carries a credential" % kind)
check(created["messenger"].display_name == "py messenger", "messenger displayName")
check(created["twilio"].account_sid == "ACa1b4c65ee0722712fab89867cb14eac7", "twilio accountSid")
first_hook = created["custom"].webhooks[0]
check(first_hook.id and first_hook.secret and first_hook.target == "https://example.com/py-v2"
      and first_hook.triggers == ["conversation:message"] and first_hook.include_full_user is True,
      "custom integration's webhook: %r" % first_hook)
ids = {kind: i.id for kind, i in created.items()}
out["integrations"] = ids

every = integrations.list_integrations(app_id).integrations
check(sorted(i.type for i in every) == sorted(ids), "list_integrations: %r" % [i.type for i in every])
some = integrations.list_integrations(app_id, filter=sc.IntegrationListFilter(types="telegram,line"))
check(sorted(i.type for i in some.integrations) == ["line", "telegram"],
      "filter types: %r" % [i.type for i in some.integrations])
first = integrations.list_integrations(app_id, page=sc.Page(size=2))
check(len(first.integrations) == 2 and first.meta.has_more is True, "integrations page 1: %r" % first.meta)
rest = integrations.list_integrations(app_id, page=sc.Page(after=first.meta.after_cursor, size=10))
check(sorted([i.id for i in first.integrations] + [i.id for i in rest.integrations]) == sorted(ids.values())
      and rest.meta.has_more is False, "integrations page 2: %r" % rest.meta)
for kind, integration_id in ids.items():
    got = integrations.get_integration(app_id, integration_id).integration
    check((got.id, got.type) == (integration_id, kind), "get_integration %s" % kind)
renamed = integrations.update_integration(app_id, ids["telegram"], sc.IntegrationUpdate(
    sc.TelegramUpdate(display_name="py telegram"))).integration
check((renamed.id, renamed.display_name) == (ids["telegram"], "py telegram"), "PATCH telegram: %r" % renamed)
renamed = integrations.update_integration(app_id, ids["custom"], sc.IntegrationUpdate(
    sc.CustomUpdate(display_name="py custom 2"))).integration
check(renamed.display_name == "py custom 2", "PATCH custom: %r" % renamed)
check(integrations.get_integration(app_id, ids["telegram"]).integration.display_name == "py telegram",
      "PATCH not kept")
for kind in ("twilio", "line"):
    integrations.delete_integration(app_id, ids[kind])
    expect_error(NotFoundException, 404, "get deleted " + kind, integrations.get_integration,
                 app_id, ids[kind])

# ---- webhooks of the custom integration (ref 6)
hook = webhooks.create_webhook(app_id, ids["custom"], sc.WebhookCreateBody(
    target="https://example.com/py-v2-b", triggers=["conversation:message", "conversation:postback"],
    include_full_source=True)).webhook
check(hook.id and hook.secret and hook.target == "https://example.com/py-v2-b", "create_webhook: %r" % hook)
check(hook.include_full_source is True and hook.include_full_user is False, "flags: %r" % hook)
listed = sorted(w.id for w in webhooks.list_webhooks(app_id, ids["custom"]).webhooks)
check(listed == sorted([first_hook.id, hook.id]), "list_webhooks: %r" % listed)
got = webhooks.get_webhook(app_id, ids["custom"], hook.id).webhook
check((got.id, got.secret) == (hook.id, hook.secret), "get_webhook")
# PY quirk (ref 6): WebhookBody always sends both flags, false by default, so
# a PATCH of the target alone also turns includeFullSource off.
changed = webhooks.update_webhook(app_id, ids["custom"], hook.id, sc.WebhookBody(
    target="https://example.com/py-v2-c")).webhook
check(changed.target == "https://example.com/py-v2-c" and changed.include_full_source is False
      and changed.triggers == ["conversation:message", "conversation:postback"],
      "update_webhook: %r" % changed)
webhooks.delete_webhook(app_id, ids["custom"], first_hook.id)
expect_error(NotFoundException, 404, "get deleted webhook", webhooks.get_webhook, app_id,
             ids["custom"], first_hook.id)
out["webhook_id"] = hook.id

# ---- errors (ref 7)
out["not_found"] = expect_error(NotFoundException, 404, "missing app", apps.get_app, MISSING)
wrong = sc.AppsApi(client(os.environ["SMOOCH_KEY_ID"], "x" * 24))
out["unauthorized"] = expect_error(UnauthorizedException, 401, "wrong secret", wrong.list_apps)
out["forbidden"] = expect_error(ForbiddenException, 403, "app key on another app",
                                integrations.list_integrations, other_app)
expect_error(ForbiddenException, 403, "app key gets another app", sc.AppsApi(as_app).get_app,
             other_app)
# The client checks displayName's length itself; model_construct skips that
# so that the server's own validation answers.
too_long = sc.AppCreateBody.model_construct(display_name="x" * 101)
out["bad_request"] = expect_error(BadRequestException, 400, "displayName over 100", apps.create_app,
                                  too_long)
expect_error(BadRequestException, 400, "PATCH displayName over 100", apps.update_app, app_id,
             sc.AppUpdateBody.model_construct(display_name="y" * 101))
check(apps.get_app(app_id).app.display_name == "py-v2 renamed", "a refused PATCH changed the app")

# Left for the Rust test: app_id (renamed, key, telegram+messenger+custom,
# custom's webhook `hook`).
print(json.dumps(out))
