"""tests/e2e/test_tls_policy.py - `postern tls-policy DOMAIN [--probe] [-c FILE]` (SPEC §4).

The command runs against an instance's config file (the server is not started). Without
--probe: the route (static or MX from a real NSD, in preference order), which profile applies
and why (recipient domain, destination host name or IP, none), the effective policy, and no
connection to anyone. With --probe: every host and address is connected to exactly as a
delivery would, and the report is judged against what the PEER saw: STARTTLS issued or not,
the TLS version, QUIT (inside TLS when TLS was up) and never MAIL FROM / RCPT / DATA.
Exit status: 0 ran (probe: every address would take the mail), 1 some would not, 2 bad config
or a DOMAIN that is no domain.
"""
import re
import subprocess
import time

import pytest

from conftest import POSTERN, relay_domain, route
from dns_server import DnsServer
from peers import ScriptedPeer, cert_sha256, make_ca, make_cert, spki_sha256
from test_mandatory_outbound import profile_toml
from test_mx import shared_port

A, B = "127.0.0.2", "127.0.0.3"
FORBIDDEN = {"MAIL", "RCPT", "DATA", "BDAT"}

ZONES = {
    # MX 20 first in the file: the report must follow the preference, not the zone order
    "partner.test": "@ MX 20 mx2\n@ MX 10 mx1\nmx1 A 127.0.0.2\nmx2 A 127.0.0.3\n",
    "hosts.test": "@ MX 10 mx.gateway.test.\n@ MX 20 other\nother A 127.0.0.3\n",
    "gateway.test": "mx A 127.0.0.2\n",
    "nullmx.test": "@ MX 0 .\n",
    "nx.test": "@ A 127.0.0.9\n",  # missing.nx.test: NXDOMAIN
}


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dns():
    with DnsServer(zones=ZONES) as d:
        yield d


@pytest.fixture(scope="module")
def mx_port():
    return shared_port((A, B))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    return {
        "ca": ca["ca"],
        "good": make_cert(d, ca, names=("mx.partner.test", "partner.test"), stem="good"),
        "self": make_cert(d, None, names=("mx.partner.test", "partner.test"), stem="self"),
    }


def run(inst, domain, *args):
    """`postern tls-policy DOMAIN ARGS -c CONFIG` from /, like an administrator would."""
    return subprocess.run([POSTERN, "tls-policy", domain, *args, "-c", str(inst.config)],
                          capture_output=True, text=True, timeout=120, cwd="/")


def parse(out):
    """The report as {"top": {key: value}, "hosts": [host lines], "probes": {relay: {key: value}},
    "result": text}; continuation lines are appended to their key with a newline."""
    rep = {"top": {}, "hosts": [], "probes": {}, "result": None}
    section, current, last = "top", rep["top"], None
    for line in out.splitlines():
        if not line.strip():
            continue
        if line.startswith("probe "):
            section, current, last = "probe", {}, None
            rep["probes"][line[len("probe "):]] = current
        elif line.startswith("result:"):
            rep["result"] = line.split(":", 1)[1].strip()
        elif section == "top" and line == "hosts:":
            section = "hosts"
        elif section == "hosts":
            rep["hosts"].append(line.strip())
        elif re.match(r"^ {0,2}[a-z]+: ", line):
            last, value = line.strip().split(":", 1)
            current[last] = value.strip()
        else:
            assert last, f"continuation without a key: {line!r}\n{out}"
            current[last] += "\n" + line.strip()
    return rep


def instance(make_instance, extra="", dns=None, ca=None, tls_extra="", domains=None, port=None):
    x = ""
    if port:
        x += f"[delivery]\nport = {port}\n\n"
    if dns:
        x += f'[dns]\nservers = ["{dns.address}"]\n\n'
    t = tls_extra + (f'\nca_file = "{ca}"\n' if ca else "")
    return make_instance(start=False, extra=x + extra, tls_extra=t, domains=domains)


def assert_probed_no_mail(peer, connections=1, tls=None):
    """The peer saw `connections` sessions, each EHLO ... QUIT, never a mail transaction; with
    tls=True STARTTLS was issued and the QUIT came inside TLS, with tls=False no STARTTLS."""
    conns = peer.wait_connections(connections)
    assert len(conns) == connections, [c.commands for c in conns]
    # The probe may exit before the peer's thread has read the last command (the QUIT inside
    # a rejected TLS session): give it a moment; a QUIT that never comes still fails below.
    deadline = time.time() + 5
    while time.time() < deadline and not all(c.verbs() and c.verbs()[-1] == "QUIT" for c in conns):
        time.sleep(0.05)
    assert not peer.saw_mail_from(), peer.all_commands()
    for c in conns:
        verbs = c.verbs()
        assert verbs[0] == "EHLO" and verbs[-1] == "QUIT", c.commands
        assert not FORBIDDEN & set(verbs), c.commands
        if tls is True:
            assert "STARTTLS" in verbs and c.tls and c.commands[-1][1] is True, c.commands
        if tls is False:
            assert "STARTTLS" not in verbs, c.commands


def partner(**outbound):
    return profile_toml(domains=("partner.test",), **outbound)


# --- without --probe: route, profile, policy -------------------------------------------------------


def test_static_route_profile_by_recipient_domain(make_instance):
    with ScriptedPeer(starttls=False) as peer:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{peer.port}") + partner(verify="ca+name"))
        r = run(inst, "Partner.Test.")
        assert r.returncode == 0, r.stderr
        rep = parse(r.stdout)
        top = rep["top"]
        assert top["domain"] == "partner.test"
        assert top["route"] == f"static hosts 127.0.0.1:{peer.port} (route partner.test)"
        assert top["profile"] == "partner (matched by recipient domain)"
        assert top["why"] == ('recipient domain partner.test matches recipient domain partner.test of profile '
                              'partner; outbound tls = "mandatory", verify = "ca+name" -> ca+name')
        assert top["policy"].startswith("ca+name - mandatory TLS; the chain must verify to a trusted CA and the "
                                        "certificate must name the peer\nmin TLS 1.2; min cipher bits 128; "
                                        "trust store system"), top["policy"]
        assert "mx" not in top
        assert rep["hosts"] == [f"127.0.0.1[127.0.0.1]:{peer.port} profile=partner policy=ca+name "
                                "names=127.0.0.1,partner.test"]
        assert rep["probes"] == {} and rep["result"] is None
        assert peer.connections == [], "without --probe nothing is connected to"


def test_relay_to_and_maildir(make_instance):
    inst = instance(make_instance, domains='[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'
                    + relay_domain("internal.test", "127.0.0.1:2626"))
    r = run(inst, "internal.test")
    assert r.returncode == 0, r.stderr
    assert parse(r.stdout)["top"]["route"] == "static hosts 127.0.0.1:2626 (domain internal.test relay_to)"
    for args in ((), ("--probe",)):
        r = run(inst, "localhost", *args)
        assert r.returncode == 0, r.stderr
        top = parse(r.stdout)["top"]
        assert top["route"] == f"maildir {inst.dir}/var/mail/localhost (domain localhost maildir)"
        assert top["verdict"] == "local delivery to maildir, no SMTP, TLS does not apply"
        assert "profile" not in top


def test_mx_hosts_in_preference_order(make_instance, dns, mx_port):
    inst = instance(make_instance, partner(verify="ca"), dns=dns, port=mx_port)
    r = run(inst, "partner.test")
    assert r.returncode == 0, r.stderr
    rep = parse(r.stdout)
    assert rep["top"]["route"] == f"mx (delivery.port {mx_port})"
    assert rep["top"]["mx"] == "MX records found"
    assert rep["top"]["policy"].startswith("ca - mandatory TLS; the chain must verify to a trusted CA, in date\n")
    assert rep["hosts"] == [
        f"mx1.partner.test[{A}]:{mx_port} pref=10 profile=partner policy=ca names=mx1.partner.test,partner.test",
        f"mx2.partner.test[{B}]:{mx_port} pref=20 profile=partner policy=ca names=mx2.partner.test,partner.test",
    ]


def test_profile_by_host_name_and_ip(make_instance, dns, mx_port):
    """No profile for the recipient domain; the MX hosts select profiles by name and by address,
    and each host line says which and why."""
    profiles = ('[[profile]]\nname = "gw"\nhosts = ["*.gateway.test"]\n\n[profile.outbound]\n'
                'tls = "mandatory"\nverify = "ca+name"\n\n'
                f'[[profile]]\nname = "lan"\nhosts = ["{B}"]\n\n[profile.outbound]\ntls = "none"\n')
    inst = instance(make_instance, profiles, dns=dns, port=mx_port)
    r = run(inst, "hosts.test")
    assert r.returncode == 0, r.stderr
    rep = parse(r.stdout)
    assert rep["top"]["profile"] == "none"
    assert rep["top"]["why"] == "no profile matches recipient domain hosts.test; tls.opportunistic = true -> may"
    assert rep["top"]["policy"].startswith("may - opportunistic TLS")
    assert rep["hosts"] == [
        f"mx.gateway.test[{A}]:{mx_port} pref=10 profile=gw policy=ca+name names=mx.gateway.test,hosts.test",
        "why: destination host mx.gateway.test matches host *.gateway.test of profile gw; "
        'outbound tls = "mandatory", verify = "ca+name" -> ca+name',
        f"other.hosts.test[{B}]:{mx_port} pref=20 profile=lan policy=none",
        f'why: destination IP {B} matches host {B} of profile lan; outbound tls = "none" -> none',
    ]


@pytest.mark.parametrize("opportunistic,level", [("true", "may"), ("false", "none")])
def test_no_profile_follows_the_global_switch(make_instance, opportunistic, level):
    inst = instance(make_instance, route("example.test", "127.0.0.1:2626"), tls_extra=f"opportunistic = {opportunistic}")
    r = run(inst, "example.test")
    assert r.returncode == 0, r.stderr
    rep = parse(r.stdout)
    assert rep["top"]["profile"] == "none"
    assert rep["top"]["why"] == (f"no profile matches recipient domain example.test; "
                                 f"tls.opportunistic = {opportunistic} -> {level}")
    assert rep["top"]["policy"].split(" - ")[0] == level
    assert rep["hosts"][0].startswith(f"127.0.0.1[127.0.0.1]:2626 profile=- policy={level}")


@pytest.mark.parametrize("domain,mx,verdict", [
    ("nullmx.test", "null MX: the domain accepts no mail (RFC 7505)",
     "would bounce: 5.1.10 domain nullmx.test does not accept mail (null MX, RFC 7505)"),
    ("missing.nx.test", "the domain does not exist (NXDOMAIN)",
     "would bounce: 5.1.2 domain missing.nx.test does not exist"),
    ("unserved.example", "the lookup failed", "would defer: 4.4.3 MX lookup for unserved.example failed temporarily ("),
])
def test_dns_verdicts(make_instance, dns, domain, mx, verdict):
    inst = instance(make_instance, dns=dns)
    r = run(inst, domain)
    assert r.returncode == 0, r.stderr  # the command ran
    top = parse(r.stdout)["top"]
    assert top["mx"] == mx and top["verdict"].startswith(verdict), r.stdout
    assert "hosts:" not in r.stdout
    r = run(inst, domain, "--probe")
    assert r.returncode == 1, r.stdout  # nothing would take the mail
    assert parse(r.stdout)["top"]["verdict"].startswith(verdict)


def test_config_error_exits_2(make_instance):
    inst = instance(make_instance)
    text = inst.config.read_text().splitlines()
    text.insert(1, "no_such_key = 1")
    inst.config.write_text("\n".join(text) + "\n")
    r = run(inst, "example.test", "--probe")
    assert r.returncode == 2
    assert r.stdout == ""
    assert re.match(rf"^{re.escape(str(inst.config))}:2: .*no_such_key", r.stderr), r.stderr


@pytest.mark.parametrize("domain,says", [
    ("", "DOMAIN is empty: give a domain name, as in example.com"),
    (".", "DOMAIN is empty: give a domain name, as in example.com"),
    ("bad domain!", "'bad domain!' is not a domain name (letters, digits and hyphens in dot-separated labels, "
                    "or an address literal such as [192.0.2.1])"),
    ("a..b", "'a..b' is not a domain name"),
    ("user@x", "'user@x' is an address: give the domain (x)"),
], ids=["empty", "dot", "bad-characters", "empty-label", "address"])
def test_a_domain_argument_that_is_no_domain_is_a_usage_error(make_instance, domain, says):
    """These used to be looked up in the DNS and reported as "would bounce: 5.1.2 domain ... does
    not exist", exit 0. Now a usage error naming the problem, exit 2, nothing looked up."""
    inst = instance(make_instance)
    r = run(inst, domain)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(f"postern tls-policy: {says}") and r.stderr.count("\n") == 1, r.stderr


@pytest.mark.parametrize("domain,route_to", [
    ("b\u00fccher.test", "static hosts 127.0.0.1:2626 (route xn--bcher-kva.test)"),
    ("B\u00fccher.test.", "static hosts 127.0.0.1:2626 (route xn--bcher-kva.test)"),
    ("partner.test.", "static hosts 127.0.0.1:2627 (route partner.test)"),
    ("[127.0.0.1]", "static hosts 127.0.0.1:25 (address literal)"),
], ids=["u-label", "u-label-trailing-dot", "trailing-dot", "address-literal"])
def test_u_labels_a_trailing_dot_and_address_literals_are_domains(make_instance, domain, route_to):
    inst = instance(make_instance, route("b\u00fccher.test", "127.0.0.1:2626") + route("partner.test", "127.0.0.1:2627"))
    r = run(inst, domain)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert parse(r.stdout)["top"]["route"] == route_to, r.stdout


# --- --probe: what a delivery would do ---------------------------------------------------------------


@pytest.mark.parametrize("trust_store", ["tls", "profile", "system"])
def test_probe_mandatory_ca_name(make_instance, pki, trust_store):
    """A CA-signed certificate naming the domain: would deliver, verified - as long as the trust
    store (tls.ca_file, or the profile's ca_file) holds the CA; the system store does not."""
    outbound = {"verify": "ca+name"}
    if trust_store == "profile":
        outbound["ca_file"] = pki["ca"]
    with ScriptedPeer(cert=pki["good"]["cert"], key=pki["good"]["key"]) as peer:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{peer.port}") + partner(**outbound),
                        ca=pki["ca"] if trust_store == "tls" else None)
        r = run(inst, "partner.test", "--probe")
        rep = parse(r.stdout)
        relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
        p = rep["probes"][relay]
        assert p["greeting"] == "220 peer.test ESMTP scripted peer"
        assert p["starttls"] == "offered"
        assert re.match(r"^TLSv1\.3 TLS_\S+ \(\d+ bits\)$", p["tls"]), p
        leaf = p["chain"].split("\n")
        assert leaf[0].startswith("0 subject=CN=mx.partner.test issuer=CN=Postern Test CA notBefore="), leaf
        assert leaf[0].endswith(" names=mx.partner.test,partner.test"), leaf
        assert leaf[1] == (f"sha256:{cert_sha256(pki['good']['cert'])} "
                           f"spki-sha256:{spki_sha256(pki['good']['cert'])}"), leaf
        if trust_store == "system":
            assert r.returncode == 1, r.stdout
            unknown_ca = r"certificate verification failed: unable to (get local issuer|verify the first) certificate"
            assert re.fullmatch(f"failed: {unknown_ca}", p["verify"]), p
            assert re.fullmatch(f"would NOT deliver: 4.7.5 {unknown_ca} {re.escape(f'({relay})')}", p["verdict"]), p
            assert rep["result"] == "1 of 1 probed addresses would NOT take the mail"
        else:
            assert r.returncode == 0, r.stdout
            assert p["verify"] == "verified (matched partner.test)"
            assert p["verdict"] == "would deliver over TLS (verified)"
            assert rep["result"] == "every probed address would take the mail (1)"
        assert_probed_no_mail(peer, tls=True)
        assert peer.connections[0].tls_version == "TLSv1.3"


def test_probe_self_signed_under_ca(make_instance, pki):
    with ScriptedPeer(cert=pki["self"]["cert"], key=pki["self"]["key"]) as peer:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{peer.port}") + partner(verify="ca"),
                        ca=pki["ca"])
        r = run(inst, "partner.test", "--probe")
        assert r.returncode == 1, r.stdout
        relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
        p = parse(r.stdout)["probes"][relay]
        assert p["verify"] == "failed: certificate verification failed: self-signed certificate"
        assert p["verdict"] == f"would NOT deliver: 4.7.5 certificate verification failed: self-signed certificate ({relay})"
        assert_probed_no_mail(peer, tls=True)


def test_probe_mandatory_without_starttls(make_instance):
    with ScriptedPeer(starttls=False) as peer:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{peer.port}") + partner())
        r = run(inst, "partner.test", "--probe")
        assert r.returncode == 1, r.stdout
        relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
        p = parse(r.stdout)["probes"][relay]
        assert p["starttls"] == "not offered" and p["tls"] == "none"
        assert "verify" not in p and "chain" not in p
        assert p["verdict"] == f"would NOT deliver: 4.7.4 TLS required but not offered by {relay}"
        assert_probed_no_mail(peer, tls=False)


def test_probe_opportunistic(make_instance, pki):
    """No profile: a peer without STARTTLS gets plaintext; one with a self-signed certificate TLS
    (untrusted, not enforced); one whose handshake fails a deferral, then plaintext on the second
    failure - and the probe makes no plaintext reconnect."""
    with ScriptedPeer(starttls=False) as plain, \
            ScriptedPeer(cert=pki["self"]["cert"], key=pki["self"]["key"]) as selfsigned, \
            ScriptedPeer(cert=pki["self"]["cert"], key=pki["self"]["key"], tls_mode="garbage") as broken:
        hosts = [f"127.0.0.1:{p.port}" for p in (plain, selfsigned, broken)]
        inst = instance(make_instance, route("example.test", *hosts), tls_extra='handshake_retry_delay = "7m"')
        r = run(inst, "example.test", "--probe")
        assert r.returncode == 1, r.stdout  # the deferral is not a delivery
        rep = parse(r.stdout)
        assert rep["top"]["policy"].startswith("may - ")
        probes = rep["probes"]
        assert list(probes) == [f"127.0.0.1[127.0.0.1]:{p.port}" for p in (plain, selfsigned, broken)]
        p = probes[f"127.0.0.1[127.0.0.1]:{plain.port}"]
        assert p["starttls"] == "not offered" and p["tls"] == "none"
        assert p["verdict"] == "would deliver in plaintext (STARTTLS not offered)"
        p = probes[f"127.0.0.1[127.0.0.1]:{selfsigned.port}"]
        assert p["verify"] == ("untrusted (certificate verify failed: self-signed certificate), "
                               "not enforced (opportunistic TLS)")
        assert p["verdict"] == "would deliver over TLS (untrusted)"
        relay = f"127.0.0.1[127.0.0.1]:{broken.port}"
        p = probes[relay]
        assert p["tls"] == "handshake failed"
        assert p["verdict"].startswith(f"would defer: 4.7.5 TLS handshake with {relay} failed: "), p
        assert p["verdict"].endswith("; the next attempt, after tls.handshake_retry_delay (7m), tries TLS again "
                                     "and delivers without TLS if the handshake fails again"), p
        assert rep["result"] == "1 of 3 probed addresses would NOT take the mail"
        assert_probed_no_mail(plain, tls=False)
        assert_probed_no_mail(selfsigned, tls=True)
        conns = broken.wait_connections(1)
        assert len(conns) == 1 and conns[0].verbs() == ["EHLO", "STARTTLS"], [c.commands for c in conns]
        assert not broken.saw_mail_from()


def test_probe_tls_none_by_profile(make_instance, pki):
    with ScriptedPeer(cert=pki["good"]["cert"], key=pki["good"]["key"]) as peer:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{peer.port}") + partner(tls="none"))
        r = run(inst, "partner.test", "--probe")
        assert r.returncode == 0, r.stdout
        p = parse(r.stdout)["probes"][f"127.0.0.1[127.0.0.1]:{peer.port}"]
        assert p["starttls"] == "offered" and p["tls"] == "not used (TLS off by policy)"
        assert p["verdict"] == "would deliver in plaintext (TLS off by policy)"
        assert_probed_no_mail(peer, tls=False)


@pytest.mark.parametrize("right", [True, False])
def test_probe_fingerprint(make_instance, pki, right):
    pin = cert_sha256(pki["self"]["cert"] if right else pki["good"]["cert"])
    with ScriptedPeer(cert=pki["self"]["cert"], key=pki["self"]["key"]) as peer:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{peer.port}")
                        + partner(verify="fingerprint", fingerprints=[f"sha256:{pin}"]))
        r = run(inst, "partner.test", "--probe")
        rep = parse(r.stdout)
        assert rep["top"]["policy"].endswith(f"pins sha256:{pin}"), rep["top"]
        p = rep["probes"][f"127.0.0.1[127.0.0.1]:{peer.port}"]
        if right:
            assert r.returncode == 0, r.stdout
            assert p["verify"] == f"verified (pin sha256:{pin})"
            assert p["verdict"] == "would deliver over TLS (verified)"
        else:
            assert r.returncode == 1, r.stdout
            assert p["verify"] == "failed: certificate fingerprint does not match any pin"
            assert p["verdict"].startswith("would NOT deliver: 4.7.5 certificate fingerprint does not match any pin")
        assert_probed_no_mail(peer, tls=True)


def test_probe_every_mx_host_in_order(make_instance, dns, mx_port, pki):
    """Delivery would stop at mx1; the probe goes on to mx2 (and says mx2 would refuse)."""
    with ScriptedPeer(host=A, port=mx_port, cert=pki["good"]["cert"], key=pki["good"]["key"]) as mx1, \
            ScriptedPeer(host=B, port=mx_port, starttls=False) as mx2:
        inst = instance(make_instance, partner(verify="ca+name"), dns=dns, port=mx_port, ca=pki["ca"])
        r = run(inst, "partner.test", "--probe")
        assert r.returncode == 1, r.stdout
        rep = parse(r.stdout)
        r1, r2 = f"mx1.partner.test[{A}]:{mx_port}", f"mx2.partner.test[{B}]:{mx_port}"
        assert list(rep["probes"]) == [r1, r2]
        assert rep["probes"][r1]["verify"] == "verified (matched partner.test)"
        assert rep["probes"][r1]["verdict"] == "would deliver over TLS (verified)"
        assert rep["probes"][r2]["verdict"] == f"would NOT deliver: 4.7.4 TLS required but not offered by {r2}"
        assert rep["result"] == "1 of 2 probed addresses would NOT take the mail"
        assert_probed_no_mail(mx1, tls=True)
        assert_probed_no_mail(mx2, tls=False)
        assert mx1.connections[0].accepted <= mx2.connections[0].accepted


def test_probe_all_good_and_unreachable(make_instance, pki):
    with ScriptedPeer(cert=pki["good"]["cert"], key=pki["good"]["key"]) as a, \
            ScriptedPeer(cert=pki["good"]["cert"], key=pki["good"]["key"]) as b:
        inst = instance(make_instance, route("partner.test", f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")
                        + partner(verify="ca"), ca=pki["ca"])
        r = run(inst, "partner.test", "--probe")
        assert r.returncode == 0, r.stdout
        assert parse(r.stdout)["result"] == "every probed address would take the mail (2)"
        assert_probed_no_mail(a, tls=True)
        assert_probed_no_mail(b, tls=True)
        dead = b.port
    inst.write_config(inst.config.read_text().replace(f"\"127.0.0.1:{a.port}\", ", ""))
    r = run(inst, "partner.test", "--probe")
    assert r.returncode == 1, r.stdout
    relay = f"127.0.0.1[127.0.0.1]:{dead}"
    p = parse(r.stdout)["probes"][relay]
    assert p == {"verdict": f"cannot connect: 4.4.1 connect to {relay}: Connection refused"}, r.stdout
