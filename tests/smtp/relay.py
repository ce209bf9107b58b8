"""A real SMTP server (aiosmtpd, from Debian's python3-aiosmtpd) for Seam's email tests.

Listens on 127.0.0.1:PORT and requires AUTH (PLAIN or LOGIN) with the given user and
password. With --cert and --key it offers STARTTLS and requires it before AUTH and MAIL
(like a submission port); without them AUTH goes over plain text. It acts like a relay's
recipient checks:
  - a recipient whose local part starts with "reject" gets
    550 5.1.1 ... Recipient address rejected: User unknown
  - one starting with "later" gets 451 4.3.0 ... Try again later
Every accepted message is written to DIR as N.eml (the DATA exactly as received) and
N.json (the envelope: mail_from, rcpt_tos, the authenticated user).

Usage: python3 relay.py --port PORT --dir DIR --user USER --password PASSWORD
                        [--cert CERT.pem --key KEY.pem]
Prints "ready" once it accepts connections; runs until killed.
"""

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Relay:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("later"):
            return f"451 4.3.0 <{address}>: Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.directory, str(n))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "user": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None,
            "tls": session.ssl is not None,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        # The .json appears last: a reader that sees it sees the whole message.
        os.rename(base + ".eml.tmp", base + ".eml")
        os.rename(base + ".json.tmp", base + ".json")
        return f"250 2.0.0 Ok: queued as TEST{n}"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode() == user and auth_data.password.decode() == password
        ):
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    # aiosmtpd logs a warning per session for AUTH without TLS and for its own deprecated
    # attribute; the tests read what the relay accepted, not its log.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    else:
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    controller = Controller(
        Relay(args.dir),
        hostname="127.0.0.1",
        port=args.port,
        auth_required=True,
        auth_require_tls=tls is not None,
        require_starttls=tls is not None,
        tls_context=tls,
        authenticator=authenticator(args.user, args.password),
        decode_data=False,
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
