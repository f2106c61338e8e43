"""Build an account with N contacts in 20 groups for the list benchmark.

    DATABASE_URL=postgresql+psycopg://... python bench/make_large_account.py --contacts 1000000

Same as `flask --app app portal bench-account`; bulk inserts (COPY on PostgreSQL).
Afterwards, run ANALYZE on PostgreSQL so that the planner knows the new sizes
(`--analyze` does it)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from bench.keys import use_bench_keys

    use_bench_keys()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slug", default="bench")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--activities", type=float, default=0.5, help="per contact")
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--analyze", action="store_true", help="ANALYZE afterwards")
    args = parser.parse_args()

    from sqlalchemy import text

    from portal import create_app
    from portal.accounts import service as accounts
    from portal.accounts.models import Account
    from portal.contacts import demo
    from portal.extensions import db

    app = create_app()
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.slug == args.slug))
        if account is None:
            account = accounts.create_account(f"Benchmark {args.slug}", args.slug)
            db.session.commit()
        started = time.perf_counter()

        def progress(done: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-6)
            print(f"  {done:>10,} / {args.contacts:,} contacts  ({rate:,.0f}/s)", flush=True)

        demo.build_large_account(
            account,
            args.contacts,
            group_count=args.groups,
            activities=args.activities,
            batch=args.batch,
            progress=progress,
        )
        elapsed = time.perf_counter() - started
        if args.analyze:
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        print(f"{args.contacts:,} contacts in account {args.slug!r} in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
