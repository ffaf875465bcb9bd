"""``python -m sandbox``: serve the sandbox sites until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox import Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox",
                                     description="Serve the fictional government sites on loopback.")
    parser.add_argument("--port", type=int, default=8600, help="shared port (0: pick a free one)")
    parser.add_argument("--slow-seconds", type=float, default=20.0,
                        help="delay of the slow host before each answer")
    parser.add_argument("--write-registry", metavar="FILE", help="write the registry YAML here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    sb = Sandbox(port=args.port, slow_seconds=args.slow_seconds, verbose=args.verbose)
    sb.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for site_id, site in sb.sites.items():
            note = " (dead host: nothing listens)" if site.dead else (
                " (slow host)" if site.slow else "")
            print(f"{site_id:24s} {sb.base_url(site_id)}{note}", flush=True)
        if args.write_registry:
            sb.write_registry(args.write_registry)
            print(f"registry written to {args.write_registry}", flush=True)
        print("serving; press Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
