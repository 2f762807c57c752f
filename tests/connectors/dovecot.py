"""A real Dovecot IMAP server for the tests: loopback ports, a test user, a Maildir the test fills.

Started in the foreground (``dovecot -F``) as a child of the test process, with its own
base_dir, a passwd-file user and a self-signed certificate made with openssl. Listens on
127.0.0.1 with a plain+STARTTLS port and an implicit-TLS port. Running as root, Dovecot's
own unprivileged users (dovecot, dovenull) run its services and own the mail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "crm"
PASSWORD = "Imap-Test-Secret-7f3a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
        check=True, capture_output=True)
    return cert, key


class Dovecot:
    def __init__(self, cert: Path, key: Path, oauth_introspection_url: str | None = None):
        # its own folder outside pytest's (which is private to the test user): Dovecot's
        # unprivileged processes must reach the passwd file and the Maildir
        self.root = root = Path(tempfile.mkdtemp(prefix="crmhub-dovecot-"))
        root.chmod(0o755)
        self.binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        if not os.path.exists(self.binary):
            raise RuntimeError("dovecot is not installed (Debian: apt-get install dovecot-imapd; .ci/run does it)")
        self.cert, self.key = cert, key
        self.port = free_port()
        self.tls_port = free_port()
        if os.geteuid() == 0:
            internal, login = pwd.getpwnam("dovecot"), pwd.getpwnam("dovenull")
            self.uid, self.gid = internal.pw_uid, internal.pw_gid
            users = (f"default_internal_user = dovecot\ndefault_internal_group = {_group(internal.pw_gid)}\n"
                     f"default_login_user = {login.pw_name}\n")
        else:
            me = pwd.getpwuid(os.getuid())
            self.uid, self.gid = me.pw_uid, me.pw_gid
            users = (f"default_internal_user = {me.pw_name}\ndefault_internal_group = {_group(me.pw_gid)}\n"
                     f"default_login_user = {me.pw_name}\n")
        self.home = root / "home" / USER
        self.maildir = self.home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{self.uid}:{self.gid}::{self.home}\n")
        self.config = root / "dovecot.conf"
        oauth = ""
        if oauth_introspection_url:
            # XOAUTH2: Dovecot posts the token to an introspection endpoint (RFC 7662) the test serves
            (root / "oauth2.conf.ext").write_text(
                f"introspection_mode = post\nintrospection_url = {oauth_introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n")
            oauth = OAUTH_PASSDB.format(root=root)
        self.config.write_text(CONFIG.format(root=root, users=users, port=self.port, tls_port=self.tls_port,
                                             cert=self.cert, key=self.key, oauth_passdb=oauth,
                                             oauth_mechanisms=" xoauth2 oauthbearer" if oauth else ""))
        self._chown()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "-F", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60  # readiness, not a timer: returns as soon as it greets
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dovecot did not greet on its port within 60 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ mail

    def folder_path(self, folder: str) -> Path:
        path = self.maildir if folder == "INBOX" else self.maildir / f".{folder}"
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return path

    def deliver(self, raw: bytes, folder: str = "INBOX", name: str | None = None) -> None:
        """Put a message into the Maildir, as a delivery agent would (tmp/ then new/)."""
        path = self.folder_path(folder)
        self._seq = getattr(self, "_seq", 0) + 1
        name = name or f"{time.time_ns()}.M{self._seq}P{os.getpid()}.test"
        tmp = path / "tmp" / name
        tmp.write_bytes(raw)
        os.rename(tmp, path / "new" / name)
        self._chown()

    def set_uidvalidity(self, folder: str, value: int) -> None:
        subprocess.run([self.doveadm, "-c", str(self.config), "mailbox", "update", "--uid-validity", str(value),
                        "-u", USER, folder], check=True, capture_output=True)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        out = subprocess.run([self.doveadm, "-c", str(self.config), "mailbox", "status", "-u", USER,
                              "uidvalidity", folder], check=True, capture_output=True, text=True).stdout
        return int(out.split("=")[1])

    def flags_of(self, folder: str = "INBOX") -> list[str]:
        """The Maildir info part of every message file (':2,S' = seen)."""
        path = self.folder_path(folder)
        return sorted(p.name.partition(":")[2] for sub in ("cur", "new") for p in (path / sub).iterdir())

    def _chown(self) -> None:
        if os.geteuid() != 0:
            return
        for dirpath, _dirnames, filenames in os.walk(self.root / "home"):
            os.chown(dirpath, self.uid, self.gid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), self.uid, self.gid)


def _group(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = crmhub-test-{port}
listen = 127.0.0.1
protocols = imap
{users}first_valid_uid = 1
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login{oauth_mechanisms}
mail_location = maildir:~/Maildir
{oauth_passdb}passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox "Sent Items" {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
"""

OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
"""
