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
            I("A01", "DEBUG is off", AUTO, asvs="14.3.2", guidance="DEBUG is False in production."),
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
                signer_role="Eng lead",
                evidence_hint="Screenshot of Developers → Settings with the secret hidden; secret-manager path",
                reattest="Before go-live; after any secret rotation",
                watches=CREDENTIALS,
            ),
            I(
                "H02",
                "Only the intended auth methods are enabled",
                MANUAL,
                signer_role="Product owner + eng",
                evidence_hint="Screenshot of the auth methods page",
                reattest="Before go-live; whenever methods change",
            ),
            I(
                "H03",
                "Dashboard callback and post-logout URLs equal the app's",
                MANUAL,
                signer_role="Eng",
                evidence_hint="Screenshot next to A13's observed value",
                reattest="Every domain change",
                watches=REDIRECTS,
            ),
            I(
                "H04",
                "Secrets in a secret manager, rotation SOP, access reviewed",
                MANUAL,
                signer_role="Security owner",
                evidence_hint="Link to the SOP; access-review ticket",
                reattest="Quarterly",
            ),
            I(
                "H05",
                "Waived Django checks justified",
                MANUAL,
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
                signer_role="Design / marketing + eng",
                evidence_hint="Screenshots; raw headers of a received test email",
                reattest="Before go-live",
            ),
            I(
                "H07",
                "Auth-flow interceptors and auth-event webhooks as intended",
                MANUAL,
                ADVISORY,
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
            I("B01", "Session cookie Secure", AUTO, asvs="3.4.1"),
            I("B02", "Session cookie HttpOnly", AUTO, asvs="3.4.2"),
            I(
                "B03",
                "SameSite=Lax on session and CSRF cookies",
                HYBRID,
                asvs="3.4.3",
                guidance="Strict breaks the login callback; None needs a signed-off cross-site waiver.",
                signer_role="Security owner",
                evidence_hint="Why a cross-site client needs SameSite=None",
            ),
            I("B04", "CSRF protection on", AUTO, asvs="4.2.2"),
            I("B05", "__Host- session cookie", AUTO, ADVISORY, asvs="3.4.4"),
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
            I("B09", "Scopes sane", AUTO, guidance="openid, and offline_access for refresh."),
            I(
                "B10",
                "Login sends a strong state and PKCE",
                AUTO,
                asvs="2.1.1",
                guidance="state of 32+ URL-safe characters kept in the session, S256 code challenge, exact "
                "redirect_uri.",
            ),
            I("B11", "Callback rejects a forged state", AUTO, asvs="4.2.2"),
            I("B12", "Logout clears everything", AUTO, asvs="3.3.1"),
            I("B13", "No caching of authenticated pages", AUTO, asvs="8.2.1"),
            I("B14", "Open redirect guarded", AUTO, asvs="5.1.5"),
            I("B15", "Security headers", AUTO, asvs="14.4.3"),
            I("B16", "Content Security Policy", AUTO, ADVISORY, asvs="14.4.3"),
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
                signer_role="Security owner",
                evidence_hint="Screenshot of Authentication → Session Policy with the values",
                reattest="Before go-live; on change",
            ),
            I(
                "H09",
                "End-to-end in staging, error paths included",
                MANUAL,
                signer_role="QA",
                evidence_hint="CI/E2E run link; test-user setup",
                reattest="Each release touching auth",
            ),
            I(
                "H11",
                "Session key rotates on login",
                MANUAL,
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
            I("C01", "Webhook secret configured", AUTO, guidance="From the environment, whsec_..."),
            I("C02", "Webhook rejects unsigned calls", AUTO),
            I(
                "C03",
                "Webhook view wired correctly",
                AUTO,
                guidance="Routed, POST only, CSRF exempt.",
            ),
            I(
                "H15",
                "SCIM events tested",
                MANUAL,
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
            I("C04", "Admin-portal link view protected", AUTO),
            I(
                "H16",
                "Admin portal flows tested",
                MANUAL,
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
            I("N01", "OIDC discovery reachable", AUTO),
            I("N02", "JWKS reachable and usable", AUTO),
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
            I("D01", "Protected URLs enforced", AUTO, asvs="4.1.1"),
            I(
                "H17",
                "Roles and permissions defined and tested",
                MANUAL,
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
            I("E01", "Security logs routed", AUTO, ADVISORY),
            I("E02", "Error reporting configured", AUTO, ADVISORY),
            I("E03", "Health endpoint", AUTO, ADVISORY),
            I(
                "E04",
                "Scalekit reachability history",
                AUTO,
                ADVISORY,
                guidance="The last network probes passed, p95 latency under the threshold.",
            ),
            I("E05", "Auth event log active", AUTO, ADVISORY),
            I(
                "H18",
                "Monitoring and alerting in place",
                MANUAL,
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
            I("R02", "Rollout percentage valid", AUTO),
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
                signer_role="Eng lead / SRE",
                evidence_hint="Runbook link; date of the last drill",
                reattest="Quarterly drill",
            ),
            I(
                "H20",
                "ASVS design items reviewed",
                MANUAL,
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
                signer_role="Eng",
                evidence_hint="Output of the migration audit command",
            ),
            I(
                "M02",
                "Users, organizations and roles exported",
                MANUAL,
                signer_role="Eng",
                evidence_hint="Export file checksum and row counts",
            ),
            I(
                "M03",
                "Export validated, bad rows resolved",
                MANUAL,
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
            I("M05", "No failed records left unresolved", AUTO, ADVISORY),
            I(
                "M06",
                "No invitation emails sent by the import",
                MANUAL,
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
                signer_role="Eng",
                evidence_hint="Dashboard screenshots per environment",
                watches=REDIRECTS,
            ),
            I(
                "M08",
                "Roles mapped to Django groups",
                MANUAL,
                signer_role="Product + eng",
                evidence_hint="Role mapping table",
                watches=("SCALEKIT_AUTH.ROLE_MAPPING",),
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
                signer_role="Eng lead",
                evidence_hint="Rollout steps with dates; kill-switch drill",
                watches=("SCALEKIT_AUTH.ROLLOUT_PERCENTAGE",),
            ),
            I(
                "M12",
                "Post-cut-over monitoring watched",
                MANUAL,
                signer_role="SRE",
                evidence_hint="Dashboard links for the first week",
            ),
            I(
                "M13",
                "Legacy auth decommissioned",
                MANUAL,
                ADVISORY,
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
