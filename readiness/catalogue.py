"""The checklists as data: Scalekit's production-readiness checklist and the five migration phases.

This is the source the database is loaded from (by the data migration, then by ``manage.py
readiness_sync`` whenever this file changes). Titles and guidance live here; who owns an item, its
evidence, status and sign-offs live in the database and survive every sync.

Item kinds: ``auto`` items are proven by probes only (no one can tick them), ``manual`` items need a
person's sign-off, ``hybrid`` items are proven by probes or, when a probe cannot see the whole
picture (a custom domain, TLS redirect at the load balancer), by a signed-off waiver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRODUCTION = "production"
MIGRATION = "migration"
CHECKLISTS = {PRODUCTION: "Production readiness", MIGRATION: "Migration phases"}

AUTO = "auto"
MANUAL = "manual"
HYBRID = "hybrid"

BLOCKER = "blocker"
ADVISORY = "advisory"


@dataclass(frozen=True)
class ItemDef:
    key: str
    title: str
    kind: str = MANUAL
    severity: str = BLOCKER
    guidance: str = ""
    signer_role: str = ""
    evidence_hint: str = ""
    reattest: str = ""
    asvs: str = ""
    #: Settings whose change makes a sign-off of this item stale (besides those its probes read).
    watches: tuple[str, ...] = ()


@dataclass(frozen=True)
class SectionDef:
    key: str
    title: str
    checklist: str
    items: tuple[ItemDef, ...] = field(default_factory=tuple)
    description: str = ""


CREDENTIALS = (
    "SCALEKIT_AUTH.ENVIRONMENT_URL",
    "SCALEKIT_AUTH.CLIENT_ID",
    "SCALEKIT_AUTH.CLIENT_SECRET",
)
REDIRECTS = ("SCALEKIT_AUTH.REDIRECT_URI", "SCALEKIT_AUTH.POST_LOGOUT_REDIRECT_URI")
#: The item whose sign-off justifies the checks listed in SILENCED_SYSTEM_CHECKS; while it has an
#: active sign-off covering them, a silenced check no longer counts against its item.
SILENCED_CHECKS_WAIVER = "H05"
#: The hint of a silenced check whose waiver is not (or no longer) signed off.
WAIVER_HINT = (
    f"Justify the waiver and sign off {SILENCED_CHECKS_WAIVER} (Waived Django checks justified); "
    "the sign-off covers the SILENCED_SYSTEM_CHECKS of its day and takes effect at once."
)

S = SectionDef
I = ItemDef  # noqa: E741

SECTIONS: tuple[SectionDef, ...] = (
    S(
        "quick",
        "Quick checks",
        PRODUCTION,
        (
            I(
                "A01",
                "DEBUG is off",
                AUTO,
                asvs="14.3.2",
                guidance="DEBUG is False in production: a debug page shows settings, code and SQL to "
                "whoever triggers an error.",
            ),
            I(
                "A02",
                "Strong secret key (and fallbacks)",
                AUTO,
                guidance="At least 50 characters, 5 unique, no django-insecure- prefix.",
            ),
            I(
                "A03",
                "Hosts pinned",
                AUTO,
                guidance="ALLOWED_HOSTS is set, has no '*' and no catch-all of a public suffix.",
            ),
            I(
                "A04",
                "HTTPS enforced",
                HYBRID,
                asvs="9.1.1",
                guidance="SecurityMiddleware with SECURE_SSL_REDIRECT, and http:// answers with a redirect "
                "to https://; or a signed-off waiver when the load balancer redirects.",
                signer_role="Security owner",
                evidence_hint="Load balancer configuration or N-probe result",
                watches=("SECURE_SSL_REDIRECT", "SILENCED_SYSTEM_CHECKS"),
            ),
            I(
                "A05",
                "Proxy TLS header correct",
                AUTO,
                guidance="Behind a TLS proxy, SECURE_PROXY_SSL_HEADER makes request.is_secure() true.",
            ),
            I(
                "A06",
                "HSTS",
                AUTO,
                asvs="9.1.1",
                guidance="SECURE_HSTS_SECONDS of a year or more, subdomains included.",
            ),
            I(
                "A07",
                "CORS not open",
                AUTO,
                guidance="No allow-all; https origins only; anchored regexes; no credentials with allow-all.",
            ),
            I(
                "A08",
                "CSRF trusted origins",
                AUTO,
                guidance="https only, no localhost, no bare wildcard.",
            ),
            I(
                "A09",
                "Scalekit credentials from the environment",
                AUTO,
                asvs="2.10.4",
                guidance="Environment URL, client id and secret, webhook secret: set, not placeholders, read "
                "from environment variables and not written in the settings file.",
            ),
            I(
                "A10",
                "Production Scalekit environment",
                HYBRID,
                guidance="https, not a *.scalekit.dev, emulator or localhost URL; client id skc_...; a custom "
                "domain needs a person's confirmation.",
                signer_role="Eng lead",
                evidence_hint="Dashboard screenshot of Developers → Settings",
                watches=CREDENTIALS,
            ),
            I(
                "A11",
                "Scalekit app wired into Django",
                AUTO,
                guidance="scalekit_auth installed, its backend in AUTHENTICATION_BACKENDS, its views routed.",
            ),
            I(
                "A12",
                "No emulator or test CA in production",
                AUTO,
                guidance="The local emulator app is not installed and no extra CA bundle overrides TLS trust.",
            ),
            I(
                "A13",
                "Redirect URIs are production-grade",
                AUTO,
                guidance="https, a real allowed host, no query or fragment, resolves to the callback view.",
            ),
            I(
                "A14",
                "Django deploy checks clean",
                HYBRID,
                guidance="No unsilenced deploy warning; every silenced check is a signed-off waiver (H05).",
                signer_role="Security owner",
                watches=("SILENCED_SYSTEM_CHECKS",),
            ),
            I(
                "H01",
                "Credentials match the production dashboard",
                MANUAL,
                guidance=(
                    "Open Developers → Settings in the production Scalekit dashboard and compare the "
                    "environment URL and client id with SCALEKIT_AUTH (A09, A10 show them masked); "
                    "the secret only by its last characters. Attach the screenshot with the secret "
                    "hidden and the secret-manager path the app reads it from."
                ),
                signer_role="Eng lead",
                evidence_hint="Screenshot of Developers → Settings with the secret hidden; secret-manager path",
                reattest="Before go-live; after any secret rotation",
                watches=CREDENTIALS,
            ),
            I(
                "H02",
                "Only the intended auth methods are enabled",
                MANUAL,
                guidance=(
                    "On the dashboard's authentication methods page, leave on only the methods the "
                    "product offers and turn off what is left from testing (passwordless, social "
                    "providers). Attach a screenshot or export of the page, naming the methods meant "
                    "to be on."
                ),
                signer_role="Product owner + eng",
                evidence_hint="Screenshot of the auth methods page",
                reattest="Before go-live; whenever methods change",
            ),
            I(
                "H03",
                "Dashboard callback and post-logout URLs equal the app's",
                MANUAL,
                guidance=(
                    "Compare the dashboard's allowed callback and post-logout URLs with "
                    "SCALEKIT_AUTH['REDIRECT_URI'] and ['POST_LOGOUT_REDIRECT_URI'] as A13 observes "
                    "them: equal character for character (scheme, host, port, trailing slash). "
                    "Attach the dashboard screenshot next to A13's value."
                ),
                signer_role="Eng",
                evidence_hint="Screenshot next to A13's observed value",
                reattest="Every domain change",
                watches=REDIRECTS,
            ),
            I(
                "H04",
                "Secrets in a secret manager, rotation SOP, access reviewed",
                MANUAL,
                guidance=(
                    "Keep the Scalekit client secret and webhook secret in the secret manager only "
                    "(not in the repository, CI logs or chat), write how to rotate them, and review "
                    "who can read them. Attach the link to the rotation SOP and the access-review "
                    "ticket."
                ),
                signer_role="Security owner",
                evidence_hint="Link to the SOP; access-review ticket",
                reattest="Quarterly",
            ),
            I(
                "H05",
                "Waived Django checks justified",
                MANUAL,
                guidance=(
                    "For each entry of SILENCED_SYSTEM_CHECKS, write why the check does not apply "
                    "here (e.g. security.W008: the load balancer redirects to HTTPS) with a proof "
                    "link (LB config, A04's network check). The sign-off covers the list of its day; "
                    "adding an entry makes it stale."
                ),
                signer_role="Security owner",
                evidence_hint="Justification and proof link per waiver",
                reattest="Each waiver; yearly",
                watches=("SILENCED_SYSTEM_CHECKS",),
            ),
        ),
    ),
    S(
        "customization",
        "Customization",
        PRODUCTION,
        (
            I(
                "H06",
                "Branding, custom domain and email deliverability",
                MANUAL,
                ADVISORY,
                guidance=(
                    "Check the hosted login page and Scalekit's emails carry the product's branding, "
                    "the custom domain's CNAME resolves (production only), an email provider is set, "
                    "and a test email reaches the inbox, not spam. Attach screenshots and the raw "
                    "headers of a received test email."
                ),
                signer_role="Design / marketing + eng",
                evidence_hint="Screenshots; raw headers of a received test email",
                reattest="Before go-live",
            ),
            I(
                "H07",
                "Auth-flow interceptors and auth-event webhooks as intended",
                MANUAL,
                ADVISORY,
                guidance=(
                    "Review the dashboard's auth-flow interceptors and auth-event webhook "
                    "subscriptions: each one the product relies on is on and points at the "
                    "production URL, none is left from testing. Attach a config export."
                ),
                signer_role="Eng",
                evidence_hint="Config export",
                reattest="Before go-live",
            ),
        ),
    ),
    S(
        "core_flows",
        "Core auth flows",
        PRODUCTION,
        (
            I(
                "B01",
                "Session cookie Secure",
                AUTO,
                asvs="3.4.1",
                guidance=(
                    "SESSION_COOKIE_SECURE = True (Django's security.W010-W012), and a real "
                    "response's session and CSRF cookies carry Secure, HttpOnly and "
                    "SameSite=Lax (the on-the-wire check). Proven by the checks; fix the "
                    "setting."
                ),
            ),
            I(
                "B02",
                "Session cookie HttpOnly",
                AUTO,
                asvs="3.4.2",
                guidance=(
                    "SESSION_COOKIE_HTTPONLY stays True (Django's default) so that JavaScript "
                    "cannot read the session cookie; remove any override."
                ),
            ),
            I(
                "B03",
                "SameSite=Lax on session and CSRF cookies",
                HYBRID,
                asvs="3.4.3",
                guidance="Strict breaks the login callback; None needs a signed-off cross-site waiver.",
                signer_role="Security owner",
                evidence_hint="Why a cross-site client needs SameSite=None",
            ),
            I(
                "B04",
                "CSRF protection on",
                AUTO,
                asvs="4.2.2",
                guidance=(
                    "django.middleware.csrf.CsrfViewMiddleware is in MIDDLEWARE and the CSRF "
                    "cookie is Secure (CSRF_COOKIE_SECURE = True), or CSRF_USE_SESSIONS keeps "
                    "the token in the session."
                ),
            ),
            I(
                "B05",
                "__Host- session cookie",
                AUTO,
                ADVISORY,
                asvs="3.4.4",
                guidance=(
                    "SESSION_COOKIE_NAME = '__Host-sessionid', with SESSION_COOKIE_SECURE, no "
                    "SESSION_COOKIE_DOMAIN and path '/': the browser then binds the cookie to "
                    "this exact host. Renaming the cookie logs everyone out once."
                ),
            ),
            I(
                "B06",
                "Session lifetime bounded",
                AUTO,
                asvs="3.3.2",
                guidance="SESSION_COOKIE_AGE at most READINESS['MAX_SESSION_AGE'] (12 h by default).",
            ),
            I(
                "B07",
                "Tokens kept server side",
                AUTO,
                asvs="3.2.3",
                guidance="Not the signed-cookies session engine: tokens would be readable in the browser.",
            ),
            I(
                "B08",
                "Middleware order",
                AUTO,
                guidance="ScalekitSessionMiddleware after SessionMiddleware and AuthenticationMiddleware.",
            ),
            I(
                "B09",
                "Scopes sane",
                AUTO,
                guidance="SCALEKIT_AUTH['SCOPES'] includes openid, and offline_access so that the "
                "session middleware gets a refresh token.",
            ),
            I(
                "B10",
                "Login sends a strong state and PKCE",
                AUTO,
                asvs="2.1.1",
                guidance="state of 32+ URL-safe characters kept in the session, S256 code challenge, exact "
                "redirect_uri.",
            ),
            I(
                "B11",
                "Callback rejects a forged state",
                AUTO,
                asvs="4.2.2",
                guidance=(
                    "The callback called with a made-up state answers 4xx or an error page, "
                    "logs no one in, keeps no token in the session and never exchanges the "
                    "code with Scalekit. A failure means the state is not checked, or checked "
                    "after the exchange."
                ),
            ),
            I(
                "B12",
                "Logout clears everything",
                AUTO,
                asvs="3.3.1",
                guidance=(
                    "Logout is POST only, deletes the server-side session and its cookie, and "
                    "redirects to Scalekit's /oidc/logout with a post_logout_redirect_uri "
                    "that is https and on an allowed host."
                ),
            ),
            I(
                "B13",
                "No caching of authenticated pages",
                AUTO,
                asvs="8.2.1",
                guidance=(
                    "Every page of READINESS['PROTECTED_URLS'] answers a logged-in user with "
                    "Cache-Control no-store or private (wrap the views in never_cache), so "
                    "the back button or a shared cache shows nothing after logout. List the "
                    "pages in that setting: without them nothing is checked."
                ),
            ),
            I(
                "B14",
                "Open redirect guarded",
                AUTO,
                asvs="5.1.5",
                guidance=(
                    "The login view given next=https://evil.invalid neither stores nor "
                    "forwards it: only internal URLs pass (url_has_allowed_host_and_scheme), "
                    "so a crafted login link cannot send users off-site."
                ),
            ),
            I(
                "B15",
                "Security headers",
                AUTO,
                asvs="14.4.3",
                guidance=(
                    "X_FRAME_OPTIONS = 'DENY', SECURE_CONTENT_TYPE_NOSNIFF = True, a valid "
                    "SECURE_REFERRER_POLICY and SECURE_CROSS_ORIGIN_OPENER_POLICY, with "
                    "SecurityMiddleware and XFrameOptionsMiddleware installed (Django's "
                    "security.W002, W006, W019, W022, E023, E024)."
                ),
            ),
            I(
                "B16",
                "Content Security Policy",
                AUTO,
                ADVISORY,
                asvs="14.4.3",
                guidance=(
                    "A policy in SECURE_CSP (Django 6) or django-csp's "
                    "CONTENT_SECURITY_POLICY, and the login page and the first protected page "
                    "really send a Content-Security-Policy header (Report-Only only warns)."
                ),
            ),
            I(
                "B17",
                "Token lifetimes within bounds",
                HYBRID,
                guidance="Token verification leeway small; access tokens seen at login short-lived; the Scalekit session policy attested in H08.",
                signer_role="Security owner",
            ),
            I(
                "H08",
                "Scalekit session policy",
                MANUAL,
                guidance=(
                    "In the dashboard's Authentication → Session Policy, set the absolute and idle "
                    "timeouts and an access-token lifetime shorter than the idle timeout, in line "
                    "with SESSION_COOKIE_AGE (B06). Attach the screenshot and write the values in "
                    "the notes."
                ),
                signer_role="Security owner",
                evidence_hint="Screenshot of Authentication → Session Policy with the values",
                reattest="Before go-live; on change",
            ),
            I(
                "H09",
                "End-to-end in staging, error paths included",
                MANUAL,
                guidance=(
                    "In staging, run login, code exchange, token refresh, session timeout and logout "
                    "end to end, then the error paths: expired token, invalid code, Scalekit "
                    "unreachable. Use test users, never in production. Attach the CI/E2E run link "
                    "and how the test users are set up."
                ),
                signer_role="QA",
                evidence_hint="CI/E2E run link; test-user setup",
                reattest="Each release touching auth",
            ),
            I(
                "H11",
                "Session key rotates on login",
                MANUAL,
                guidance=(
                    "Prove the session key changes at login (scalekit_auth's callback logs in "
                    "through django.contrib.auth.login, which cycles it; a custom flow must call "
                    "request.session.cycle_key()) with a test comparing the key before and after the "
                    "callback. Attach the test's name and a CI link."
                ),
                signer_role="Eng",
                asvs="3.2.1",
                evidence_hint="Name of the passing test and a CI link",
                reattest="Each release",
            ),
        ),
    ),
    S(
        "auth_methods",
        "Auth methods",
        PRODUCTION,
        (
            I(
                "H10",
                "Each enabled method tested",
                MANUAL,
                guidance=(
                    "Test each method enabled in H02 in staging, with the date: password (sign-up, "
                    "login, reset), magic link (send, redeem, expiry), each social provider, "
                    "passkeys, the method picker and the fallback. Attach the test matrix."
                ),
                signer_role="QA",
                evidence_hint="Test matrix with dates",
                reattest="Before go-live; when a method is added",
            ),
        ),
    ),
    S(
        "error_handling",
        "Error handling",
        PRODUCTION,
        (
            I(
                "EH1",
                "Error pages leak nothing",
                AUTO,
                asvs="7.4.1",
                guidance="A 404 through the full stack shows no debug page, settings or traceback.",
            ),
            I(
                "EH2",
                "Auth error paths reviewed",
                MANUAL,
                guidance=(
                    "Provoke each auth error in staging: a login older than "
                    "SCALEKIT_AUTH['LOGIN_STATE_TTL'], an invalid or reused code, Scalekit "
                    "unreachable. Each page says what happened and offers to sign in again, with no "
                    "traceback or token. Attach a screenshot of each page."
                ),
                signer_role="QA",
                evidence_hint="Screenshots of expired-token, invalid-code and network-failure pages",
                reattest="Before go-live",
            ),
        ),
    ),
    S(
        "enterprise_sso",
        "Enterprise SSO",
        PRODUCTION,
        (
            I(
                "H12",
                "SSO tested per IdP",
                MANUAL,
                guidance=(
                    "For each customer IdP (Okta, Entra ID, Google Workspace...), test SP- and IdP- "
                    "initiated login, the attribute mapping, new, existing and deactivated users, "
                    "and the error a misconfigured connection shows. Attach the test matrix per "
                    "connection."
                ),
                signer_role="QA + customer IT",
                evidence_hint="Test matrix per connection",
                reattest="Per customer onboarding",
            ),
        ),
    ),
    S(
        "jit",
        "JIT provisioning",
        PRODUCTION,
        (
            I(
                "H13",
                "JIT provisioning policy decided",
                MANUAL,
                guidance=(
                    "Decide and write down: the organization domains registered, how users are "
                    "linked (SCALEKIT_AUTH['LINK_BY_EXTERNAL_ID'], ['LINK_BY_EMAIL']), default "
                    "roles, whether attributes sync at login (SYNC_PROFILE), how contractors are "
                    "invited, and who reviews JIT-created users each quarter. Attach the decision "
                    "record."
                ),
                signer_role="Product + security",
                evidence_hint="Decision record",
                reattest="Before the first enterprise customer; quarterly",
            ),
        ),
    ),
    S(
        "scim",
        "SCIM",
        PRODUCTION,
        (
            I(
                "C01",
                "Webhook secret configured",
                AUTO,
                guidance="SCALEKIT_AUTH['WEBHOOK_SECRET'] is read from the environment (as in A09) "
                "and looks like whsec_...; without it no webhook call can be verified.",
            ),
            I(
                "C02",
                "Webhook rejects unsigned calls",
                AUTO,
                guidance=(
                    "Unsigned and badly signed POSTs to the webhook URL get 400 or 401 (never "
                    "2xx, never CSRF's 403) and change no row. A failure means the signature "
                    "is not verified before the payload is used."
                ),
            ),
            I(
                "C03",
                "Webhook view wired correctly",
                AUTO,
                guidance="The webhook URL resolves to scalekit_auth's view, which accepts POST only "
                "and is CSRF exempt (otherwise Scalekit's calls get 403).",
            ),
            I(
                "H15",
                "SCIM events tested",
                MANUAL,
                guidance=(
                    "From a test directory, send user create, update and deactivate events and group "
                    "changes; check that repeated or invalid events do no harm, users are "
                    "deactivated rather than deleted, the endpoint answers 2xx fast, and Scalekit's "
                    "retries are handled. Attach the event logs and the idempotency test's name."
                ),
                signer_role="Eng + QA",
                evidence_hint="Logs of test events; idempotency test name",
                reattest="Before go-live; per IdP",
            ),
        ),
    ),
    S(
        "admin_portal",
        "Admin portal",
        PRODUCTION,
        (
            I(
                "C04",
                "Admin-portal link view protected",
                AUTO,
                guidance=(
                    "The view of READINESS['ADMIN_PORTAL_URL_NAME'] answers anonymous and "
                    "non-admin users with 302, 401 or 403 and never with a portal link; "
                    "skipped when the project has no such view."
                ),
            ),
            I(
                "H16",
                "Admin portal flows tested",
                MANUAL,
                guidance=(
                    "For a test organization, generate the admin-portal link, walk through the SSO "
                    "setup flow and the user management pages, and check that only the "
                    "organization's admins get the link. Attach the recording or the completed "
                    "checklist."
                ),
                signer_role="Eng / CS",
                evidence_hint="Walk-through recording or checklist",
                reattest="Per customer",
            ),
        ),
    ),
    S(
        "network",
        "Network",
        PRODUCTION,
        (
            I(
                "N01",
                "OIDC discovery reachable",
                AUTO,
                guidance=(
                    "GET <environment URL>/.well-known/openid-configuration answers 200 JSON "
                    "whose issuer equals SCALEKIT_AUTH['ENVIRONMENT_URL'] and whose jwks_uri "
                    "and end_session_endpoint are https on the same host. Failing only from "
                    "production points to a firewall or proxy."
                ),
            ),
            I(
                "N02",
                "JWKS reachable and usable",
                AUTO,
                guidance=(
                    "The JWKS answers 200 with at least one RSA key for RS256, each with its "
                    "own kid and loadable: without it no token can be verified."
                ),
            ),
            I(
                "N03",
                "Token endpoint accepts the configured credentials",
                AUTO,
                guidance="A client-credentials token is issued and its kid is in the JWKS.",
            ),
            I(
                "H14",
                "Customer networks allow Scalekit",
                MANUAL,
                guidance=(
                    "Ask each customer's IT to allow <environment>.scalekit.com, cdn.scalekit.com "
                    "and fonts.googleapis.com through their firewall or VPN, and to try a login from "
                    "inside their network. Attach their written confirmation."
                ),
                signer_role="Customer success + IT",
                evidence_hint="Customer confirmation",
                reattest="Per customer",
            ),
        ),
    ),
    S(
        "user_org",
        "User and organization management",
        PRODUCTION,
        (
            I(
                "U01",
                "Scalekit identities linked to Django users",
                AUTO,
                guidance="The identity link model (Scalekit user id, organization, external id) exists.",
            ),
            I(
                "U02",
                "User lifecycle handled",
                MANUAL,
                guidance=(
                    "Show that a user deleted in Scalekit, or whose last membership is removed, "
                    "loses access here: scalekit_auth's webhook deactivates the Django user and "
                    "clears the roles of a removed membership. Attach the names of the passing tests "
                    "for the user-deleted and membership events."
                ),
                signer_role="Eng",
                evidence_hint="Test names: user deleted and membership events deactivate users",
                reattest="Before go-live",
            ),
        ),
    ),
    S(
        "rbac",
        "RBAC",
        PRODUCTION,
        (
            I(
                "D01",
                "Protected URLs enforced",
                AUTO,
                asvs="4.1.1",
                guidance=(
                    "Each (path, permission) of READINESS['PROTECTED_URLS'] sends anonymous "
                    "users to the login (or answers 401/403) and answers 403 to a logged-in "
                    "user without the permission. List the project's sensitive pages there: "
                    "without them nothing is checked."
                ),
            ),
            I(
                "H17",
                "Roles and permissions defined and tested",
                MANUAL,
                guidance=(
                    "Define the roles and permissions in the dashboard, the default role of new "
                    "members, and their Django side (SCALEKIT_AUTH['ROLE_GROUPS'], STAFF_ROLES, "
                    "SUPERUSER_ROLES); test what each role can and cannot reach. Attach the role "
                    "matrix and the test report."
                ),
                signer_role="Product + eng",
                evidence_hint="Role matrix; test report",
                reattest="Whenever roles change",
            ),
        ),
    ),
    S(
        "mcp",
        "MCP",
        PRODUCTION,
        (
            I(
                "H21",
                "MCP auth tested",
                MANUAL,
                guidance=(
                    "Only if MCP clients authenticate through Scalekit: test the server auth flow, "
                    "the consent screen, token exchange, custom handlers and session handling. "
                    "Otherwise mark the item not applicable and say so. Attach the test notes."
                ),
                signer_role="Eng",
                evidence_hint="Test notes",
                reattest="Before enabling MCP",
            ),
        ),
    ),
    S(
        "monitoring",
        "Monitoring",
        PRODUCTION,
        (
            I(
                "E01",
                "Security logs routed",
                AUTO,
                ADVISORY,
                guidance=(
                    "LOGGING sends django.security and the auth logger "
                    "(READINESS['AUTH_LOGGER']) to a real handler at WARNING or below, so "
                    "refused logins and suspicious requests leave a trace."
                ),
            ),
            I(
                "E02",
                "Error reporting configured",
                AUTO,
                ADVISORY,
                guidance=(
                    "ADMINS is set, or an error tracker's DSN "
                    "(READINESS['ERROR_TRACKER_ENV'], e.g. SENTRY_DSN) is in the environment, "
                    "so that a 500 reaches someone."
                ),
            ),
            I(
                "E03",
                "Health endpoint",
                AUTO,
                ADVISORY,
                guidance=(
                    "A health endpoint (django-health-check or django-watchman) is routed "
                    "under READINESS['HEALTH_URL_NAME'], for the load balancer and the uptime "
                    "monitor."
                ),
            ),
            I(
                "E04",
                "Scalekit reachability history",
                AUTO,
                ADVISORY,
                guidance="The last network probes passed, p95 latency under the threshold.",
            ),
            I(
                "E05",
                "Auth event log active",
                AUTO,
                ADVISORY,
                guidance=(
                    "scalekit_auth's AuthEvent log (logins, failures, refreshes, kill switch) "
                    "is installed and in the admin, so that an auth incident can be traced."
                ),
            ),
            I(
                "H18",
                "Monitoring and alerting in place",
                MANUAL,
                guidance=(
                    "Set up auth-log monitoring in the Scalekit dashboard, alerts on suspicious "
                    "activity and login failures, dashboards of sign-ups, logins, failures and "
                    "session length, webhook-delivery monitoring, and a log retention policy. Attach "
                    "the dashboard and alert links and the policy."
                ),
                signer_role="SRE",
                evidence_hint="Dashboard and alert links; retention policy",
                reattest="Yearly",
            ),
        ),
    ),
    S(
        "reliability",
        "Reliability",
        PRODUCTION,
        (
            I(
                "R01",
                "Rollback switch present",
                AUTO,
                guidance="The rollout kill switch is a model editable in the admin.",
            ),
            I(
                "R02",
                "Rollout percentage valid",
                AUTO,
                guidance=(
                    "SCALEKIT_AUTH['ROLLOUT_PERCENTAGE'], when set, is a number from 0 to "
                    "100; when it is not, the admin's Rollout settings row decides."
                ),
            ),
            I(
                "R03",
                "Shared cache for refresh locks",
                AUTO,
                guidance="A cache shared by all processes (Redis), so concurrent refreshes coalesce.",
            ),
            I(
                "H19",
                "Incident runbook and rollback drill",
                MANUAL,
                guidance=(
                    "Write the incident runbook (contacts, escalation, where the auth events are) "
                    "and the rollback: untick 'enabled' in the admin's Rollout settings and every "
                    "login goes to LEGACY_LOGIN_URL, no deploy. Drill it in staging. Attach the "
                    "runbook link and the date of the last drill."
                ),
                signer_role="Eng lead / SRE",
                evidence_hint="Runbook link; date of the last drill",
                reattest="Quarterly drill",
            ),
            I(
                "H20",
                "ASVS design items reviewed",
                MANUAL,
                guidance=(
                    "Review the design against ASVS 3.3.3 (end other sessions after a password "
                    "change), 3.3.4 (view and revoke sessions), 3.5.1 (revoke linked apps), 3.7.1 "
                    "(re-authenticate before sensitive actions) and 3.1.1 (no tokens in logs or "
                    "URLs). Attach review notes per requirement."
                ),
                signer_role="Security reviewer",
                evidence_hint="Review notes per requirement",
                reattest="Major releases",
            ),
        ),
    ),
    S(
        "phase1_audit",
        "Phase 1: audit and export",
        MIGRATION,
        (
            I(
                "M01",
                "Current auth audited",
                MANUAL,
                guidance=(
                    "Run manage.py migration_audit (--json to keep a file) and resolve what it "
                    "reports as blocking the import, e.g. users without email. Attach its output."
                ),
                signer_role="Eng",
                evidence_hint="Output of the migration audit command",
            ),
            I(
                "M02",
                "Users, organizations and roles exported",
                MANUAL,
                guidance=(
                    "Export the users, organizations and roles as files for migration_import (CSV or "
                    "JSON), or plan to read them with --from-database; write down each file's row "
                    "count and checksum. Attach them."
                ),
                signer_role="Eng",
                evidence_hint="Export file checksum and row counts",
            ),
            I(
                "M03",
                "Export validated, bad rows resolved",
                MANUAL,
                guidance=(
                    "Run migration_import --dry-run on the export: it validates every row and sends "
                    "nothing. Fix the source of each invalid row (migration_export_failures lists "
                    "them with reasons) until the dry run is clean. Attach the validation report."
                ),
                signer_role="Eng",
                evidence_hint="Validation report",
            ),
        ),
    ),
    S(
        "phase2_import",
        "Phase 2: import",
        MIGRATION,
        (
            I(
                "M04",
                "Import runs verified with zero differences",
                AUTO,
                guidance="Every finished import run was verified against Scalekit with no difference.",
            ),
            I(
                "M05",
                "No failed records left unresolved",
                AUTO,
                ADVISORY,
                guidance=(
                    "No import record is left failed in the runs that count (not dry runs, "
                    "not rolled back): retry them (admin action, or migration_resume --retry- "
                    "failed) or export them with migration_export_failures and fix the "
                    "source."
                ),
            ),
            I(
                "M06",
                "No invitation emails sent by the import",
                MANUAL,
                guidance=(
                    "Import without --send-invitation-email (the default), so that no user gets "
                    "Scalekit's invitation, and check in Scalekit (or the emulator) that none was "
                    "sent. Attach the run's options and that evidence."
                ),
                signer_role="Eng",
                evidence_hint="Import options and emulator/dashboard evidence",
            ),
        ),
    ),
    S(
        "phase3_redirects",
        "Phase 3: redirects and roles",
        MIGRATION,
        (
            I(
                "M07",
                "Redirect URIs registered in every environment",
                MANUAL,
                guidance=(
                    "Register the callback and post-logout URLs of every environment (staging, "
                    "production...) in that environment's Scalekit dashboard, exactly as its "
                    "SCALEKIT_AUTH['REDIRECT_URI'] and ['POST_LOGOUT_REDIRECT_URI'] give them. "
                    "Attach a dashboard screenshot per environment."
                ),
                signer_role="Eng",
                evidence_hint="Dashboard screenshots per environment",
                watches=REDIRECTS,
            ),
            I(
                "M08",
                "Roles mapped to Django groups",
                MANUAL,
                guidance=(
                    "Map each Scalekit role to Django groups and flags in "
                    "SCALEKIT_AUTH['ROLE_GROUPS'], STAFF_ROLES and SUPERUSER_ROLES (migration_audit "
                    "proposes values that keep today's groups), and check a test user of each role "
                    "gets them. Attach the mapping table."
                ),
                signer_role="Product + eng",
                evidence_hint="Role mapping table",
                watches=(
                    "SCALEKIT_AUTH.ROLE_GROUPS",
                    "SCALEKIT_AUTH.STAFF_ROLES",
                    "SCALEKIT_AUTH.SUPERUSER_ROLES",
                ),
            ),
        ),
    ),
    S(
        "phase4_code",
        "Phase 4: application code",
        MIGRATION,
        (
            I(
                "M09",
                "API authentication through Scalekit tokens",
                AUTO,
                ADVISORY,
                guidance="DRF's DEFAULT_AUTHENTICATION_CLASSES includes scalekit_auth's bearer class.",
            ),
            I(
                "M10",
                "Legacy login paths removed or behind the rollout",
                MANUAL,
                guidance=(
                    "Remove the old login, password-reset and API authentication paths, or put them "
                    "behind the rollout so that users moved to Scalekit cannot use them "
                    "(SCALEKIT_AUTH['LEGACY_LOGIN_URL'] stays for the others). Attach the pull- "
                    "request links."
                ),
                signer_role="Eng",
                evidence_hint="Pull request links",
            ),
        ),
    ),
    S(
        "phase5_deploy",
        "Phase 5: deploy and monitor",
        MIGRATION,
        (
            I(
                "M11",
                "Rollout plan and kill switch tested",
                MANUAL,
                guidance=(
                    "Write the rollout steps (percentages, allow and deny lists, dates) and drill "
                    "the kill switch in staging: untick 'enabled' in the admin's Rollout settings, "
                    "check logins go to the legacy login and bearer tokens get 401, then tick it "
                    "again. Attach the plan and the drill's date."
                ),
                signer_role="Eng lead",
                evidence_hint="Rollout steps with dates; kill-switch drill",
                watches=("SCALEKIT_AUTH.ROLLOUT_PERCENTAGE",),
            ),
            I(
                "M12",
                "Post-cut-over monitoring watched",
                MANUAL,
                guidance=(
                    "For the first week after cut-over, look daily at login failures, auth events "
                    "and webhook deliveries and note what was found and done. Attach the dashboard "
                    "links."
                ),
                signer_role="SRE",
                evidence_hint="Dashboard links for the first week",
            ),
            I(
                "M13",
                "Legacy auth decommissioned",
                MANUAL,
                ADVISORY,
                guidance=(
                    "Once every user logs in through Scalekit, remove the legacy login, the "
                    "passwords no longer used and the rollout's legacy path. Attach the decommission "
                    "ticket."
                ),
                signer_role="Eng lead",
                evidence_hint="Decommission ticket",
            ),
        ),
    ),
)

del S, I


def all_items() -> list[tuple[SectionDef, ItemDef]]:
    return [(section, item) for section in SECTIONS for item in section.items]


def find_item(key: str) -> ItemDef:
    for _, item in all_items():
        if item.key == key:
            return item
    raise KeyError(f"no checklist item {key!r} in the catalogue")
