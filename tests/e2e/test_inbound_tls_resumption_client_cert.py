"""tests/e2e/test_inbound_tls_resumption_client_cert.py - session resumption never bypasses an
inbound client-certificate check (SPEC §1.2-1.3, issue 6's resumption kept where no certificate
is asked for).

A resumed TLS session carries the client's leaf certificate but not the intermediates it sent, so
a chain through an intermediate CA cannot be checked again; and a ticket issued where no
certificate was asked for carries no certificate at all. So a connection that requests a client
certificate issues no ticket and accepts none: every such session is a full handshake, with the
chain the client sends. Connections that request no certificate keep resuming
(test_tls_resumption.py).

The client certificate here is issued by an intermediate CA; the profile's ca_file holds the
root only, so the check needs the intermediate from the client's handshake."""
import ssl
import subprocess

import pytest

from conftest import RawSMTP
from peers import make_ca, make_cert

BODY = b"Subject: resumed with a client certificate\r\n\r\nhello\r\n"
CHECKED = "127.0.0.5"    # matched by the profile that requires a client certificate
UNCHECKED = "127.0.0.6"  # no profile: opportunistic, no certificate asked for
VERSIONS = [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2]


def make_intermediate(d, root):
    """An intermediate CA signed by `root` (openssl CLI): {"ca", "ca_key"}."""
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{d}/inter.key",
        "-out", f"{d}/inter.csr", "-subj", "/CN=Postern Test Intermediate CA")
    with open(f"{d}/inter-ext.cnf", "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    run("x509", "-req", "-in", f"{d}/inter.csr", "-CA", root["ca"], "-CAkey", root["ca_key"], "-CAcreateserial",
        "-out", f"{d}/inter.pem", "-days", "30", "-extfile", f"{d}/inter-ext.cnf")
    return {"ca": f"{d}/inter.pem", "ca_key": f"{d}/inter.key"}


@pytest.fixture
def pki(tmp_path):
    """Root CA, intermediate, and a client certificate file holding leaf + intermediate."""
    root = make_ca(tmp_path, cn="Postern Test Root CA", stem="root")
    inter = make_intermediate(tmp_path, root)
    leaf = make_cert(tmp_path, ca=inter, names=("client.partner.test",), stem="client", eku="clientAuth")
    chain = tmp_path / "client-chain.pem"
    chain.write_text(open(leaf["cert"]).read() + open(inter["ca"]).read())
    return {"root": root["ca"], "chain": str(chain), "key": leaf["key"]}


@pytest.fixture
def inst(make_instance, pki):
    return make_instance(extra=f'[[profile]]\nname = "certs"\nhosts = ["{CHECKED}"]\n'
                               f'[profile.inbound]\ntls = "mandatory"\nverify = "ca"\nca_file = "{pki["root"]}"\n')


def client_context(pki, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    ctx.load_cert_chain(pki["chain"], pki["key"])
    return ctx


def session(inst, source, ctx, offer=None, mail=True):
    """One session from `source`: EHLO, STARTTLS (offering `offer`, an earlier session), EHLO,
    then one message when `mail`. Returns (the TLS session, whether it was resumed, the reply to
    the second EHLO, the reply to the message)."""
    with RawSMTP(inst.host, inst.port, source=source) as c:
        c.ehlo()
        c.starttls(context=ctx, session=offer)
        reused = c.sock.session_reused
        ehlo = c.cmd("EHLO client.partner.test")  # TLS 1.3: reads the ticket, if one is sent
        sent = c.send_mail("a@example.test", ["bob@localhost"], BODY) if mail and ehlo.code == 250 else None
        c.cmd("QUIT")
        return c.sock.session, reused, ehlo, sent


@pytest.mark.parametrize("version", VERSIONS, ids=["TLSv1.3", "TLSv1.2"])
def test_second_session_with_the_first_sessions_ticket_delivers(inst, pki, version):
    """The partner's second connection offers the first one's session: it must not be resumed
    (the intermediate would be missing and every command refused 554), and it delivers."""
    ctx = client_context(pki, version)
    first, reused, ehlo, sent = session(inst, CHECKED, ctx)
    assert not reused and ehlo.code == 250 and sent.code == 250, (ehlo, sent)
    _, reused, ehlo, sent = session(inst, CHECKED, ctx, offer=first)
    assert ehlo.code == 250, f"{version.name}: resumed session refused: {ehlo!r}"
    assert sent.code == 250, sent
    assert not reused, f"{version.name}: a certificate-checked session was resumed"
    assert len(inst.wait_maildir("bob", count=2)) == 2
    assert inst.events("tls_policy", verdict="refused") == []


@pytest.mark.parametrize("version", VERSIONS, ids=["TLSv1.3", "TLSv1.2"])
def test_ticket_from_an_unchecked_connection_is_not_resumed_where_a_certificate_is_required(inst, pki, version):
    """A ticket from a connection that asked for no certificate (it holds none) offered where a
    certificate is required: a full handshake, the certificate is asked for, checked, accepted."""
    ctx = client_context(pki, version)
    unchecked, reused, ehlo, _ = session(inst, UNCHECKED, ctx, mail=False)
    assert ehlo.code == 250
    assert unchecked.has_ticket, "no ticket where no certificate is asked for: resumption lost there"
    _, reused, ehlo, sent = session(inst, CHECKED, ctx, offer=unchecked)
    assert ehlo.code == 250, f"{version.name}: ticket without a certificate resumed: {ehlo!r}"
    assert not reused and sent.code == 250, (reused, sent)
    assert len(inst.wait_maildir("bob")) == 1


def test_unchecked_connections_still_resume(inst, pki):
    """Where no certificate is asked for, the ticket still works (issue 6)."""
    ctx = client_context(pki, ssl.TLSVersion.TLSv1_3)
    first, _, ehlo, _ = session(inst, UNCHECKED, ctx, mail=False)
    assert ehlo.code == 250 and first.has_ticket
    _, reused, ehlo, sent = session(inst, UNCHECKED, ctx, offer=first)
    assert reused and ehlo.code == 250 and sent.code == 250, (reused, ehlo, sent)
