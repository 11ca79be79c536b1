"""Command line: ``callcenter serve | demo | cdr list|show | user add | operator add |
tenant create|list|show|update|suspend|resume|export|delete|asr-model |
flows validate|import|export|list|publish | transcribe | worker | recordings purge | bans list|lift``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.settings import ConfigFileError, Settings, load_settings

# Flag name -> Settings field, for the flags serve and demo share.
_NODE_FLAGS: dict[str, tuple[str, type]] = {
    "--data-dir": ("data_dir", Path),
    "--sip-host": ("sip_host", str),
    "--sip-port": ("sip_port", int),
    "--http-host": ("http_host", str),
    "--http-port": ("http_port", int),
    "--advertised-ip": ("advertised_ip", str),
    "--max-calls": ("max_calls", int),
    "--rtp-port-min": ("rtp_port_min", int),
    "--rtp-port-max": ("rtp_port_max", int),
    "--log-level": ("log_level", str),
    "--sip-tls-port": ("sip_tls_port", int),
    "--sip-tls-cert": ("sip_tls_cert", Path),
    "--sip-tls-key": ("sip_tls_key", Path),
    "--sip-tls-ca-file": ("sip_tls_ca_file", Path),
    "--node-id": ("node_id", str),
    "--redis-url": ("redis_url", str),
    "--database-url": ("database_url", str),
    "--sip-outbound-proxy": ("sip_outbound_proxy", str),
    "--tls-cert": ("tls_cert", Path),
    "--tls-key": ("tls_key", Path),
}
_DB_FLAGS: dict[str, tuple[str, type]] = {
    "--data-dir": ("data_dir", Path),
    "--database-url": ("database_url", str),
}
_WORKER_FLAGS: dict[str, tuple[str, type]] = {
    **_DB_FLAGS,
    "--asr-model": ("asr_model", Path),
    "--transcription-workers": ("transcription_workers", int),
    "--recordings-dir": ("recordings_dir", Path),
}
_QUOTA_FLAGS = {"quota_concurrent_calls": "carrier calls in progress at once",
                "quota_agents": "agents", "quota_recording_mb": "stored recordings, MiB",
                "quota_transcription_minutes": "minutes transcribed a month"}
_TABLE_COLUMNS = ("received_at", "direction", "caller", "dialed", "tenant", "duration", "end_cause", "sip_status",
                  "agent", "queue", "disposition", "node")


class CliError(Exception):
    """A user-facing error: printed on stderr, exit status 2."""


def _add_flags(parser: argparse.ArgumentParser, flags: dict[str, tuple[str, type]]) -> None:
    parser.add_argument("--config", type=Path, default=None, help="TOML or YAML config file ($CALLCENTER_CONFIG)")
    for flag, (dest, kind) in flags.items():
        parser.add_argument(flag, dest=dest, type=kind, default=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description="Call-center platform node")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_flags(sub.add_parser("serve", help="run the node (SIP + HTTP API)"), _NODE_FLAGS)
    _add_flags(sub.add_parser("demo", help="create the demo tenant if missing, then run the node"), _NODE_FLAGS)

    cdr = sub.add_parser("cdr", help="call records").add_subparsers(dest="cdr_command", required=True)
    cdr_list = cdr.add_parser("list", help="list call records, newest first")
    _add_flags(cdr_list, _DB_FLAGS)
    cdr_list.add_argument("--json", action="store_true", help="one JSON object per line")
    cdr_list.add_argument("--limit", type=int, default=100)
    cdr_list.add_argument("--tenant", default=None, help="only this tenant (slug)")
    cdr_show = cdr.add_parser("show", help="one call record with its IVR trace, agent, wrap-up and events, as JSON")
    _add_flags(cdr_show, _DB_FLAGS)
    cdr_show.add_argument("call_id")

    flows = sub.add_parser("flows", help="IVR flows").add_subparsers(dest="flows_command", required=True)
    f_validate = flows.add_parser("validate", help="check a flow file (JSON or YAML); with --tenant also "
                                                   "against the tenant's prompts, calendars, hosts and dialing rules")
    f_validate.add_argument("file", type=Path)
    f_validate.add_argument("--tenant", default=None, help="tenant slug")
    _add_flags(f_validate, _DB_FLAGS)
    f_import = flows.add_parser("import", help="store a flow file as a new version; --number publishes it")
    f_import.add_argument("file", type=Path)
    f_import.add_argument("--tenant", required=True, help="tenant slug")
    f_import.add_argument("--number", default=None, help="publish on this number of the tenant")
    _add_flags(f_import, _DB_FLAGS)
    f_export = flows.add_parser("export", help="print a flow version as JSON (the newest unless --version)")
    f_export.add_argument("name")
    f_export.add_argument("--tenant", required=True, help="tenant slug")
    f_export.add_argument("--version", type=int, default=None)
    _add_flags(f_export, _DB_FLAGS)
    f_list = flows.add_parser("list", help="the tenant's flows, versions and where they are published")
    f_list.add_argument("--tenant", required=True, help="tenant slug")
    _add_flags(f_list, _DB_FLAGS)
    f_publish = flows.add_parser("publish", help="put a stored version live on a number (also to roll back)")
    f_publish.add_argument("name")
    f_publish.add_argument("--tenant", required=True, help="tenant slug")
    f_publish.add_argument("--version", type=int, required=True)
    f_publish.add_argument("--number", required=True)
    _add_flags(f_publish, _DB_FLAGS)

    tenant = sub.add_parser("tenant", help="customer tenants (the operator's)").add_subparsers(
        dest="tenant_command", required=True)
    t_create = tenant.add_parser("create", help="a tenant and its first admin (user admin, password printed once)")
    t_create.add_argument("slug", help="the company name people sign in with, e.g. acme")
    t_create.add_argument("--name", required=True, help="display name")
    t_create.add_argument("--timezone", default=None, help="IANA time zone (default Asia/Shanghai)")
    t_update = tenant.add_parser("update", help="rename a tenant or change its quotas ('none': no limit)")
    t_update.add_argument("slug")
    t_update.add_argument("--name", default=None)
    for command in (t_create, t_update):
        for quota, what in _QUOTA_FLAGS.items():
            command.add_argument(f"--{quota.removeprefix('quota_').replace('_', '-')}", dest=quota,
                                 type=_quota_arg, default=argparse.SUPPRESS, help=f"{what} ('none': no limit)")
    t_list = tenant.add_parser("list", help="customer tenants with status, quotas and today's calls")
    t_list.add_argument("--json", action="store_true", help="one JSON object per line")
    t_show = tenant.add_parser("show", help="one tenant with its quotas and today's usage, as JSON")
    t_suspend = tenant.add_parser("suspend", help="refuse the tenant's new calls and sign-ins (data kept)")
    t_resume = tenant.add_parser("resume", help="lift a suspension")
    t_export = tenant.add_parser("export", help="write the tenant's data (records, recordings, transcripts, "
                                                "configuration) to a zip")
    t_export.add_argument("--output", type=Path, default=None, help="zip file (default tenant-SLUG-TIME.zip here)")
    t_delete = tenant.add_parser("delete", help="remove every row and file of the tenant (after an export)")
    for command in (t_show, t_suspend, t_resume, t_export, t_delete):
        command.add_argument("slug")
    for command in (t_create, t_update, t_list, t_show, t_suspend, t_resume, t_export, t_delete):
        _add_flags(command, _DB_FLAGS)
    asr_model = tenant.add_parser("asr-model", help="the vosk model a tenant's IVR speech uses (node restart applies)")
    asr_model.add_argument("slug", help="tenant slug")
    asr_model.add_argument("path", nargs="?", type=Path, help="model directory; omit with --clear")
    asr_model.add_argument("--clear", action="store_true", help="use the node's model again")
    _add_flags(asr_model, _DB_FLAGS)

    operator = sub.add_parser("operator", help="the platform's operators").add_subparsers(
        dest="operator_command", required=True)
    operator_add = operator.add_parser("add", help="an operator (company platform) with a generated password")
    operator_add.add_argument("username")
    _add_flags(operator_add, _DB_FLAGS)

    transcribe = sub.add_parser("transcribe", help="transcribe stored recordings not transcribed yet (or failed), "
                                                   "with a progress bar; then score them (QA)")
    _add_flags(transcribe, {**_DB_FLAGS, "--asr-model": ("asr_model", Path)})
    transcribe.add_argument("--since", type=_date_arg, default=None,
                            help="only recordings from this date or time on (ISO 8601, e.g. 2026-11-23)")
    transcribe.add_argument("--tenant", default=None, help="only this tenant (slug)")
    transcribe.add_argument("--redo", action="store_true", help="also transcribe again those already done")
    transcribe.add_argument("--workers", type=int, default=None, help="threads (default: one per CPU core)")
    worker = sub.add_parser("worker", help="only transcribe: take jobs from the queue the nodes share (PostgreSQL) "
                                           "until SIGTERM, which lets the jobs running finish")
    _add_flags(worker, _WORKER_FLAGS)
    recordings = sub.add_parser("recordings", help="recordings").add_subparsers(dest="recordings_command",
                                                                                required=True)
    purge = recordings.add_parser("purge", help="delete recordings past their tenant's retention now "
                                                "(the node also does it every hour); legal holds are kept")
    _add_flags(purge, _DB_FLAGS)

    drain = sub.add_parser("drain", help="a cluster node leaves without dropping a call: new calls refused, its "
                                         "tenants handed over, it exits after its last call (its SIGTERM)")
    _add_flags(drain, {"--data-dir": ("data_dir", Path)})
    drain.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")

    bans = sub.add_parser("bans", help="sources banned after failed authentication (SIP digest, sign-in)") \
        .add_subparsers(dest="bans_command", required=True)
    bans_list = bans.add_parser("list", help="bans in force (a running node applies a lift within seconds)")
    _add_flags(bans_list, _DB_FLAGS)
    bans_list.add_argument("--json", action="store_true", help="one JSON object per line")
    bans_lift = bans.add_parser("lift", help="lift a ban by id, or every ban on an address")
    _add_flags(bans_lift, _DB_FLAGS)
    target = bans_lift.add_mutually_exclusive_group(required=True)
    target.add_argument("ban_id", nargs="?", type=int, help="the id shown by 'bans list'")
    target.add_argument("--source", default=None, help="every ban on this address")

    user = sub.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    user_add = user.add_parser("add", help="add a user with a generated password")
    _add_flags(user_add, _DB_FLAGS)
    user_add.add_argument("--tenant", required=True, help="tenant slug")
    user_add.add_argument("--username", required=True)
    user_add.add_argument("--role", required=True, choices=["admin", "supervisor", "agent", "qa"])
    return parser


def _quota_arg(value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number, or 'none': {value!r}") from None


def _date_arg(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _settings(args: argparse.Namespace, flags: dict[str, tuple[str, type]]) -> Settings:
    overrides = {dest: getattr(args, dest) for dest, _ in flags.values()}
    try:
        return load_settings(overrides, args.config)
    except (ValidationError, ConfigFileError) as exc:
        raise CliError(f"invalid settings: {exc}") from exc


def _existing_engine(settings: Settings) -> Engine:
    """Engine for a database that must already exist (no silent creation in a wrong dir)."""
    from callcenter.db import make_engine

    url = settings.effective_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        if not Path(parsed.database).exists():
            raise CliError(f"no database at {parsed.database} (run 'callcenter serve' or 'callcenter demo' first)")
    return make_engine(url)


def _run_node(settings: Settings) -> int:
    from callcenter import node  # written by the node composition; imported late on purpose

    result: Any = node.run(settings)
    return int(result or 0)


def _cmd_serve(args: argparse.Namespace) -> int:
    from callcenter.db import make_engine, migrate
    from callcenter.logs import setup_logging

    settings = _settings(args, _NODE_FLAGS)
    setup_logging(settings.log_level)
    engine = make_engine(settings.effective_database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return _run_node(settings)


def _cmd_demo(args: argparse.Namespace) -> int:
    from callcenter.db import make_engine, migrate
    from asr import bundled_model_path
    from callcenter.demo import (DEMO_ADMIN, DEMO_AGENTS, DEMO_NUMBER, DEMO_NUMBER_ZH, DEMO_OPERATOR, DEMO_SLUG,
                                 DEMO_STAFF, ensure_demo_tenant)
    from callcenter.models import PLATFORM_SLUG
    from callcenter.logs import setup_logging

    settings = _settings(args, _NODE_FLAGS)
    setup_logging(settings.log_level)
    if settings.asr_model is None and (bundled := bundled_model_path()) is not None:
        settings = settings.model_copy(update={"asr_model": bundled})  # speech in the demo menu
    engine = make_engine(settings.effective_database_url)
    try:
        migrate(engine)
        created = ensure_demo_tenant(engine)
    finally:
        engine.dispose()
    if created.admin is not None:
        print(
            f"Demo tenant ready: number {DEMO_NUMBER} (Mandarin menu: {DEMO_NUMBER_ZH}), admin login: "
            f"tenant={DEMO_SLUG} user={DEMO_ADMIN} password={created.admin}",
            flush=True,
        )
    else:
        print("Demo tenant exists (passwords were printed when it was created)", flush=True)
    for username, (password, sip_user, sip_password) in created.agents.items():
        skills = ", ".join(f"{k} {v}" for k, v in DEMO_AGENTS[username].items())
        print(f"Demo agent {username} ({skills}): login password {password}, "
              f"SIP phone {sip_user} secret {sip_password}", flush=True)
    for username, password in created.staff.items():
        print(f"Demo user {username} ({DEMO_STAFF[username].value}): login password {password}", flush=True)
    if created.operator is not None:  # no "password=": that is the demo admin's line
        print(f"Platform operator: company {PLATFORM_SLUG}, user {DEMO_OPERATOR}, password {created.operator}, "
              f"page {settings.http_url}/operator", flush=True)
    print(f"Sign in at {settings.http_url}/ (company {PLATFORM_SLUG} for the operator, {DEMO_SLUG} for the "
          "demo's users): each role lands on its page, the operator on /operator, the admin on the console "
          "/admin, agents on the softphone /agent, QA on /qa, the supervisor on the wallboard /supervisor",
          flush=True)
    return _run_node(settings)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and "username" in value:  # an agent reference
        return str(value["username"] or value.get("id"))
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _cmd_cdr_list(args: argparse.Namespace) -> int:
    from callcenter.cdr import recent_records
    from callcenter.models import Tenant

    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    settings = _settings(args, _DB_FLAGS)
    engine = _existing_engine(settings)
    try:
        tenant_id = None
        if args.tenant is not None:
            with Session(engine) as db:
                tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == args.tenant))
            if tenant_id is None:
                raise CliError(f"no tenant {args.tenant!r}")
        rows = recent_records(engine, limit=args.limit, tenant_id=tenant_id)
    finally:
        engine.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    for row in rows:  # a call answered on another node: both, the call's node first
        if row["agent_node"] is not None:
            row["node"] = f"{row['node']}/{row['agent_node']}"
    table = [list(_TABLE_COLUMNS)] + [[_fmt(row[c]) for c in _TABLE_COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_TABLE_COLUMNS))]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return 0


def _cmd_cdr(args: argparse.Namespace) -> int:
    return _cmd_cdr_list(args) if args.cdr_command == "list" else _cmd_cdr_show(args)


def _cmd_cdr_show(args: argparse.Namespace) -> int:
    from callcenter.cdr import record_detail

    engine = _existing_engine(_settings(args, _DB_FLAGS))
    try:
        detail = record_detail(engine, args.call_id)
    finally:
        engine.dispose()
    if detail is None:
        raise CliError(f"no call record {args.call_id!r}")
    print(json.dumps(detail, ensure_ascii=False, indent=2))
    return 0


def _tenant_id(db: Session, slug: str) -> int:
    from callcenter.models import Tenant

    tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise CliError(f"no tenant {slug!r}")
    return int(tenant_id)


def _read_flow(path: Path) -> tuple[Any, str]:
    from ivr.compiler import load_document

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    return load_document(text, path.name), text


def _cmd_flows(args: argparse.Namespace) -> int:
    from callcenter import flows
    from ivr.compiler import compile_flow
    from ivr.errors import FlowValidationError

    try:
        if args.flows_command == "validate" and args.tenant is None:
            raw, text = _read_flow(args.file)
            flow = compile_flow(raw, source_text=text)
            print(f"{args.file}: flow '{flow.name}' is valid ({len(flow.nodes)} nodes)")
            return 0
        settings = _settings(args, _DB_FLAGS)
        engine = _existing_engine(settings)
        prompts = flows.prompt_library(settings.data_dir)
        try:
            with Session(engine) as db:
                tenant_id = _tenant_id(db, args.tenant)
                names = frozenset(prompts.list(tenant_id))
                if args.flows_command == "validate":
                    raw, text = _read_flow(args.file)
                    flow = flows.validate(db, tenant_id, raw, names, text)
                    print(f"{args.file}: flow '{flow.name}' is valid for tenant {args.tenant}")
                elif args.flows_command == "import":
                    raw, text = _read_flow(args.file)
                    result = flows.import_flow(db, tenant_id, raw, names, source_text=text, number=args.number)
                    db.commit()
                    where = f", published on {result.published_on}" if result.published_on else ""
                    print(f"flow '{result.flow}' version {result.version} stored{where}")
                elif args.flows_command == "export":
                    row = flows.find_version(db, tenant_id, args.name, args.version)
                    print(json.dumps(row.document, ensure_ascii=False, indent=2))
                elif args.flows_command == "list":
                    print(json.dumps(flows.list_flows(db, tenant_id), ensure_ascii=False, indent=2))
                else:
                    flows.publish(db, tenant_id, args.name, args.version, args.number)
                    db.commit()
                    print(f"flow '{args.name}' version {args.version} published on {args.number}")
        finally:
            engine.dispose()
    except FlowValidationError as exc:
        for issue in exc.issues:
            print(f"{getattr(args, 'file', '')}: {issue}", file=sys.stderr)
        print("callcenter: error: invalid flow; nothing was stored", file=sys.stderr)
        return 1
    except flows.FlowStoreError as exc:
        raise CliError(str(exc)) from exc
    return 0


def _cmd_tenant(args: argparse.Namespace) -> int:
    if args.tenant_command == "asr-model":
        return _cmd_tenant_model(args)
    from callcenter import tenancy
    from callcenter.db import migrate
    from callcenter.models import utcnow
    from callcenter.node_tenants import RELOAD_PERIOD
    from callcenter.tenant_export import write_export

    settings = _settings(args, _DB_FLAGS)
    engine = _existing_engine(settings)
    command = args.tenant_command
    try:
        migrate(engine)
        with Session(engine) as db:
            if command == "create":
                quotas = {k: getattr(args, k) for k in _QUOTA_FLAGS if hasattr(args, k)}
                tenant, password = tenancy.create(db, args.slug, args.name, quotas, timezone=args.timezone)
                db.commit()
                print(f"Tenant {tenant.slug} created; its admin signs in with company {tenant.slug}, "
                      f"user {tenancy.FIRST_ADMIN}, password {password} (shown once)")
            elif command == "list":
                for tenant in tenancy.customers(db):
                    row = _tenant_row(db, tenant)
                    print(json.dumps(row, ensure_ascii=False) if args.json else
                          f"{tenant.slug:<20} {tenant.status:<10} calls today {row['today']['calls']:<6} "
                          + " ".join(f"{k.removeprefix('quota_')}={row[k] if row[k] is not None else '-'}"
                                     for k in tenancy.QUOTA_FIELDS) + f"  {tenant.name}")
            elif command == "show":
                print(json.dumps(_tenant_row(db, tenancy.find(db, args.slug)), ensure_ascii=False, indent=2))
            elif command == "update":
                changes = {k: getattr(args, k) for k in _QUOTA_FLAGS if hasattr(args, k)}
                if args.name is not None:
                    changes["name"] = args.name
                tenancy.update(db, tenancy.find(db, args.slug), changes)
                db.commit()
                print(f"tenant {args.slug} updated: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
            elif command in ("suspend", "resume"):
                step = tenancy.suspend if command == "suspend" else tenancy.resume
                tenant = step(db, tenancy.find(db, args.slug))
                db.commit()
                print(f"tenant {tenant.slug} {tenant.status} (running nodes apply it within "
                      f"{RELOAD_PERIOD:.0f} seconds)")
            elif command == "export":
                tenant = tenancy.find(db, args.slug)
                output = args.output or Path(f"tenant-{tenant.slug}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.zip")
                storage, keys = _recording_archive(settings, engine)
                with output.open("wb") as out:
                    counts = write_export(db, tenant, out, storage, lambda: keys.get(tenant.id), settings.data_dir)
                tenant.exported_at = utcnow()
                tenancy.audit(db, tenancy.CLI, "tenant.export", f"tenant:{tenant.slug}", counts)
                db.commit()
                print(f"tenant {tenant.slug} exported to {output}: "
                      + ", ".join(f"{v} {k}" for k, v in counts.items()))
            elif command == "delete":
                tenancy.delete_tenant(db, tenancy.find(db, args.slug), settings.data_dir,
                                      settings.effective_recordings_dir)
                db.commit()
                print(f"tenant {args.slug} deleted with all its data")
    except tenancy.TenancyError as exc:
        raise CliError(exc.message) from exc
    finally:
        engine.dispose()
    return 0


def _tenant_row(db: Session, tenant: Any) -> dict[str, Any]:
    """A tenant as the CLI shows it: settings, quotas and today's usage."""
    from callcenter import tenancy, usage

    day = usage.tenant_usage(db, tenant, usage.today(tenant), usage.today(tenant))[0]
    return {"slug": tenant.slug, "name": tenant.name, "status": tenant.status, "timezone": tenant.timezone,
            **{k: getattr(tenant, k) for k in tenancy.QUOTA_FIELDS},
            "recording_bytes": tenancy.stored_recording_bytes(db, tenant.id),
            "exported_at": tenant.exported_at.isoformat() if tenant.exported_at else None,
            "today": {k: v for k, v in vars(day).items() if k not in ("tenant", "day")}}


def _cmd_operator(args: argparse.Namespace) -> int:
    from callcenter import tenancy
    from callcenter.db import migrate

    settings = _settings(args, _DB_FLAGS)
    engine = _existing_engine(settings)
    try:
        migrate(engine)
        with Session(engine) as db:
            password = tenancy.add_operator(db, args.username)
            db.commit()
    except tenancy.TenancyError as exc:
        raise CliError(exc.message) from exc
    finally:
        engine.dispose()
    print(f"Operator {args.username} added: company {tenancy.PLATFORM_SLUG}, user {args.username}, "
          f"password {password} (shown once); page {settings.http_url}/operator")
    return 0


def _cmd_tenant_model(args: argparse.Namespace) -> int:
    from asr import AsrError, load_model
    from callcenter.models import Tenant

    if args.clear == (args.path is not None):
        raise CliError("give a model directory, or --clear")
    path: str | None = None
    if args.path is not None:
        try:
            load_model(args.path.resolve())  # refuse a path that is not a loadable vosk model
        except AsrError as exc:
            raise CliError(str(exc)) from exc
        path = str(args.path.resolve())
    engine = _existing_engine(_settings(args, _DB_FLAGS))
    try:
        with Session(engine) as db:
            tenant = db.get(Tenant, _tenant_id(db, args.slug))
            assert tenant is not None
            tenant.asr_model = path
            db.commit()
    finally:
        engine.dispose()
    print(f"tenant {args.slug}: speech model {path or 'of the node'} (applies when the node restarts)")
    return 0


def _cmd_user_add(args: argparse.Namespace) -> int:
    from callcenter.db import migrate
    from callcenter.models import AuditLog, Tenant, TenantKind, User, utcnow
    from callcenter.security import generate_password, hash_password

    settings = _settings(args, _DB_FLAGS)
    engine = _existing_engine(settings)
    try:
        migrate(engine)
        password = generate_password()
        with Session(engine) as db:
            tenant = db.scalar(select(Tenant).where(Tenant.slug == args.tenant))
            if tenant is None:
                raise CliError(f"no tenant {args.tenant!r}")
            if tenant.kind != TenantKind.CUSTOMER.value:
                raise CliError(f"{args.tenant!r} is the operators' tenant: use 'callcenter operator add'")
            user = User(
                tenant_id=tenant.id,
                username=args.username,
                password_hash=hash_password(password),
                role=args.role,
                active=True,
                created_at=utcnow(),
            )
            db.add(user)
            try:
                db.flush()
                db.add(
                    AuditLog(
                        tenant_id=tenant.id,
                        user_id=None,
                        action="user.create",
                        target=f"user:{user.id}",
                        detail={"username": user.username, "role": user.role, "via": "cli"},
                        at=utcnow(),
                    )
                )
                db.commit()
            except IntegrityError as exc:
                raise CliError(f"user {args.username!r} already exists in tenant {args.tenant!r}") from exc
    finally:
        engine.dispose()
    print(f"User {args.username} ({args.role}) added to tenant {args.tenant}; password: {password}")
    return 0


def _recording_archive(settings: Settings, engine: Engine) -> tuple[Any, Any]:
    from callcenter.recording_service import TenantKeys
    from recordings.storage import LocalStorage

    return LocalStorage(settings.effective_recordings_dir), TenantKeys(engine, settings.effective_master_key)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    import os

    from asr import AsrError, bundled_model_path, load_model
    from callcenter.db import migrate
    from callcenter.models import Tenant
    from callcenter.progress import ProgressBar
    from callcenter.transcription import backlog, run_backlog

    settings = _settings(args, {**_DB_FLAGS, "--asr-model": ("asr_model", Path)})
    engine = _existing_engine(settings)
    try:
        migrate(engine)
        with Session(engine) as db:
            tenant_id = _tenant_id(db, args.tenant) if args.tenant else None
            paths = {t.id: t.asr_model for t in db.scalars(select(Tenant))}
        default_path = settings.asr_model or bundled_model_path()
        models: dict[str, Any] = {}

        def model_for(tenant: int) -> Any:
            path = paths.get(tenant) or default_path
            if path is None:
                return None
            if str(path) not in models:
                try:
                    models[str(path)] = load_model(Path(path))
                except AsrError as exc:
                    raise CliError(str(exc)) from exc
            return models[str(path)]

        jobs = backlog(engine, since=args.since, tenant_id=tenant_id, redo=args.redo)
        if not jobs:
            print("nothing to transcribe")
            return 0
        audio_min = sum(seconds for _, seconds in jobs) / 60
        print(f"transcribing {len(jobs)} recordings, {audio_min:.1f} min of audio", flush=True)
        bar = ProgressBar(audio_min, "min audio")
        storage, keys = _recording_archive(settings, engine)
        counts = run_backlog(engine, storage, keys, model_for, jobs, args.workers or os.cpu_count() or 1,
                             lambda done, c: bar.update(done / 60, f"{c['done']} done, {c['failed']} failed"))
        bar.close()
    finally:
        engine.dispose()
    print(f"{counts['done']} transcribed, {counts['failed']} failed, {counts['skipped']} taken by another worker")
    return 1 if counts["failed"] else 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from callcenter.db import migrate
    from callcenter.logs import setup_logging
    from callcenter.worker import run_worker

    settings = _settings(args, _WORKER_FLAGS)
    setup_logging(settings.log_level)
    engine = _existing_engine(settings)
    try:
        migrate(engine)
        run_worker(settings, engine, settings.transcription_workers, sys.stdout)
    finally:
        engine.dispose()
    return 0


def _cmd_recordings(args: argparse.Namespace) -> int:
    from callcenter.recording_service import purge_expired

    settings = _settings(args, _DB_FLAGS)
    engine = _existing_engine(settings)
    try:
        storage, _ = _recording_archive(settings, engine)
        purged = purge_expired(engine, storage, datetime.now(timezone.utc))
    finally:
        engine.dispose()
    print(f"{purged} recordings purged")
    return 0


def _running(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie left for its parent to collect does not)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmd_drain(args: argparse.Namespace) -> int:
    import os
    import signal
    import time

    from callcenter.node import PIDFILE

    settings = _settings(args, {"--data-dir": ("data_dir", Path)})
    pidfile = settings.data_dir / PIDFILE
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        raise CliError(f"no node running with data in {settings.data_dir} ({pidfile} missing or stale)") from None
    print(f"draining node (pid {pid}): new calls refused, tenants handed over; waiting for its calls to end",
          flush=True)
    started = time.monotonic()
    while True:
        if not _running(pid):
            print(f"node left after {time.monotonic() - started:.0f} s", flush=True)
            return 0
        if args.timeout is not None and time.monotonic() - started > args.timeout:
            print("still draining (calls in progress); it leaves by itself after its last call", flush=True)
            return 1
        time.sleep(0.5)


def _cmd_bans(args: argparse.Namespace) -> int:
    import getpass

    from callcenter.bans import active_bans, lift_ban, lift_bans_on
    from callcenter.db import migrate

    settings = _settings(args, _DB_FLAGS)
    engine = _existing_engine(settings)
    try:
        migrate(engine)
        with Session(engine) as db:
            if args.bans_command == "list":
                rows = active_bans(db)
                for row in rows:
                    item = {"id": row.id, "protocol": row.protocol, "source": row.source, "account": row.account,
                            "tenant_id": row.tenant_id, "failures": row.failures, "since": row.since.isoformat(),
                            "until": row.until.isoformat()}
                    if args.json:
                        print(json.dumps(item))
                    else:
                        who = row.source + (f" as {row.account}" if row.account else " (every account)")
                        print(f"{row.id:>6}  {row.protocol:<4}  {who}  {row.failures} failures, "
                              f"until {row.until:%Y-%m-%d %H:%M:%S} UTC")
                if not rows and not args.json:
                    print("no bans in force")
                return 0
            by = f"operator {getpass.getuser()}"
            if args.source is not None:
                lifted = [row.id for row in lift_bans_on(db, args.source, by)]
            else:
                one = lift_ban(db, args.ban_id, by)
                lifted = [one.id] if one is not None else []
            db.commit()
    finally:
        engine.dispose()
    if not lifted:
        raise CliError("no ban in force with that id" if args.source is None else f"no ban in force on {args.source}")
    print(f"{len(lifted)} ban(s) lifted: " + ", ".join(map(str, lifted)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``callcenter`` command."""
    args = build_parser().parse_args(argv)
    handlers = {
        "serve": _cmd_serve,
        "demo": _cmd_demo,
        "cdr": _cmd_cdr,
        "user": _cmd_user_add,
        "flows": _cmd_flows,
        "tenant": _cmd_tenant,
        "operator": _cmd_operator,
        "transcribe": _cmd_transcribe,
        "worker": _cmd_worker,
        "recordings": _cmd_recordings,
        "bans": _cmd_bans,
        "drain": _cmd_drain,
    }
    try:
        return handlers[args.command](args)
    except CliError as exc:
        print(f"callcenter: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
