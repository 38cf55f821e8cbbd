"""A real SMTP server for fleet-notify's e-mail tests (aiosmtpd).

Each accepted message is written to --dir as NNNN.eml (the bytes received) with NNNN.json
beside it (headers and MIME parts as Python's email package reads them, envelope sender,
recipients, whether the session was encrypted, the login used).
Recipients whose local part starts with `reject` get a permanent 550, with `busy` a transient
451. --tls-cert/--tls-key offer STARTTLS (required before MAIL), or with --implicit-tls wrap the
whole connection; --auth user:password requires that login (only over TLS, as aiosmtpd wants).

Prints `READY <port>` once it accepts connections; runs until stdin closes.
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import sys
import warnings

# aiosmtpd itself still sets the attribute it deprecates; its warning is noise here
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    print("aiosmtpd is missing: pip install aiosmtpd==1.4.6", file=sys.stderr, flush=True)
    sys.exit(3)


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if local.startswith("busy"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.out, "%04d" % self.count)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        meta = {
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "message_id": str(msg["message-id"]),
            "content_type": msg.get_content_type(),
            "parts": [
                {"type": part.get_content_type(), "content": part.get_content()}
                for part in (msg.iter_parts() if msg.is_multipart() else [msg])
            ],
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": session.auth_data,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(raw)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 queued as fleet-test-%d" % self.count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth")
    a = p.parse_args()

    kwargs = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.implicit_tls:
            kwargs["ssl_context"] = ctx
        else:
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = True
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(
                success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None
            )

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        # over implicit TLS aiosmtpd's session does not know it is encrypted
        kwargs["auth_require_tls"] = not a.implicit_tls

    controller = Controller(Sink(a.dir), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("READY %d" % a.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
