"""tests/e2e/test_inbound_ca_fallback.py - the trust store an inbound profile checks client
certificates against when it names none (SPEC §1.3: a profile's `ca_file` defaults to
`tls.ca_file`, else the system store).

An inbound mandatory profile matched by client IP with verify = "ca" and NO ca_file of its own,
under a global `tls.ca_file`: a client certificate issued by that CA is accepted and its mail
stored; a certificate from another CA, or a self-signed one, completes the handshake and then
gets `554 5.7.0 certificate verification failed: ...` to every command but QUIT (RFC 3207 4.1),
and nothing is stored. The same profile with tls.ca_file pointing at the other CA flips both
outcomes, so the verdicts come from tls.ca_file and not from a store the profile (or the
listener) carries anyway; with no tls.ca_file at all (the system store), neither test CA is
trusted."""

from conftest import RawSMTP
from inbound_refusal import assert_every_command_refused, assert_nothing_stored, start_tls
from peers import make_ca, make_cert

BODY = b"Subject: inbound ca fallback\r\n\r\nhello\r\n"
HOST = "127.0.0.5"  # the profile's client address; RawSMTP binds to it with source=
REASON = "certificate verification failed: "


def profile_without_ca_file():
    return (f'[[profile]]\nname = "certs"\nhosts = ["{HOST}"]\n'
            '[profile.inbound]\ntls = "mandatory"\nverify = "ca"\n')


def refused_session(inst, cert):
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<alice@partner.test>")  # the profile matched: mandatory
        assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), r
        start_tls(c, cert)
        assert_every_command_refused(c, REASON)


def accepted_session(inst, cert, count):
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        start_tls(c, cert)
        c.ehlo("client.partner.test")
        r = c.send_mail("alice@partner.test", ["bob@localhost"], BODY)
        assert r.code == 250 and r.last.startswith("2.0.0 Ok: queued as"), r
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob", count)
    assert len(msgs) == count and b"with ESMTPS" in msgs[-1], msgs
    return msgs


def pki(tmp_path):
    ca = make_ca(tmp_path)
    other_ca = make_ca(tmp_path, cn="Other CA", stem="other-ca")
    return {
        "ca": ca,
        "other_ca": other_ca,
        "good": make_cert(tmp_path, ca, names=("client.partner.test",), stem="good", eku="clientAuth"),
        "foreign": make_cert(tmp_path, other_ca, names=("client.partner.test",), stem="foreign", eku="clientAuth"),
        "self": make_cert(tmp_path, None, names=("client.partner.test",), stem="self", eku="clientAuth"),
    }


def test_profile_without_ca_file_verifies_client_certificates_against_tls_ca_file(make_instance, tmp_path):
    p = pki(tmp_path)
    inst = make_instance(tls_extra=f'ca_file = "{p["ca"]["ca"]}"', extra=profile_without_ca_file())

    # another CA's certificate, and a self-signed one: refused after the handshake, nothing stored
    refused_session(inst, p["foreign"])
    assert_nothing_stored(inst)
    refused_session(inst, p["self"])
    assert_nothing_stored(inst)
    ev = inst.wait_events("tls_policy", 2, verdict="refused", profile="certs")
    assert len(ev) == 2 and all(e["reason"].startswith(REASON) for e in ev), ev

    # a certificate issued by tls.ca_file's CA: accepted by the same profile
    accepted_session(inst, p["good"], 1)
    assert inst.wait_events("tls_policy", verdict="ok", profile="certs")


def test_tls_ca_file_pointing_at_the_other_ca_flips_the_verdicts(make_instance, tmp_path):
    """The control of the test above: the same certificates, the same profile, tls.ca_file =
    the other CA. The certificate that was refused is accepted and the one that was accepted is
    refused - so the store the profile used was tls.ca_file."""
    p = pki(tmp_path)
    inst = make_instance(tls_extra=f'ca_file = "{p["other_ca"]["ca"]}"', extra=profile_without_ca_file())
    refused_session(inst, p["good"])
    assert_nothing_stored(inst)
    accepted_session(inst, p["foreign"], 1)


def test_profile_without_ca_file_and_no_tls_ca_file_uses_the_system_store(make_instance, tmp_path):
    """No ca_file anywhere: the system store, which trusts neither test CA - a certificate from
    either is refused, nothing stored. (The first test's acceptance is then tls.ca_file's doing.)"""
    p = pki(tmp_path)
    inst = make_instance(extra=profile_without_ca_file())
    refused_session(inst, p["good"])
    refused_session(inst, p["foreign"])
    assert_nothing_stored(inst)
