"""The certificate container's plan, without a server: which names get HTTPS, the script it
runs, the container it is, and what the router tells about a certificate."""

from __future__ import annotations

import subprocess

from dockyard.certs import acme
from dockyard.config.model import ProxyConfig
from dockyard.router import api


def test_which_names_get_https() -> None:
    names = ["blog.example.com", "hello.localhost", "localhost", "203.0.113.5", "::1",
             "*.example.com", "www.example.com"]
    assert acme.tls_domains(names, True) == ["blog.example.com", "www.example.com"]
    assert acme.tls_domains(names, False) == []


def test_the_ca_follows_the_settings() -> None:
    assert acme.ca_url(ProxyConfig()) == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme.ca_url(ProxyConfig(acme_staging=True)) == acme.STAGING
    assert acme.ca_url(ProxyConfig(acme_ca="https://pebble:14000/dir")) == \
        "https://pebble:14000/dir"


def test_the_container_shares_the_routers_namespace_and_publishes_nothing() -> None:
    settings = ProxyConfig(acme_email="ops@example.com", acme_ca_root="/tmp/root.pem",
                           acme_image="goacme/lego:v4.19")
    argv = acme.run(settings, gid=1000).argv
    assert "--network=container:dockyard-router" in argv
    assert not any(a == "-p" or a.startswith("--publish") for a in argv)
    assert "--label=dockyard.role=certs" in argv
    assert "--env=ACME_EMAIL=ops@example.com" in argv and "--env=ROUTER_GID=1000" in argv
    assert f"--env=LEGO_CA_CERTIFICATES={acme.CA_ROOT}" in argv
    assert list(argv[-5:]) == ["--entrypoint=sh", "--", "goacme/lego:v4.19", acme.SCRIPT,
                               "loop"]
    # changing an ACME setting changes the container's hash (it is recreated)
    assert acme.config_hash(settings, 1000) != acme.config_hash(
        ProxyConfig(acme_email="other@example.com", acme_ca_root="/tmp/root.pem",
                    acme_image="goacme/lego:v4.19"), 1000)


def test_the_script_installs_through_the_runtime_api_and_is_valid_shell() -> None:
    text = acme.script()
    for needle in ("RCERTS=$CONF/certs\n", "new ssl cert $RCERTS/$name.pem",
                   "set ssl cert %s <<", "commit ssl cert $RCERTS/$name.pem",
                   "add ssl crt-list $RCERTS/crt-list $RCERTS/$name.pem",
                   "add map $CONF/tls.map $1 1", '--http.port "$ACME_LISTEN"',
                   'nc "${API%:*}" "${API#*:}"', "del map $CONF/tls.map $name",
                   "del ssl crt-list $RCERTS/crt-list $pem"):
        assert needle in text, needle
    # the settings come from the container's environment, from the router's own constants
    argv = acme.run(ProxyConfig(acme_email="ops@example.com"), gid=1000).argv
    assert "--env=API=127.0.0.1:9999" in argv and "--env=ACME_LISTEN=127.0.0.1:8402" in argv
    assert "--env=CONF=/usr/local/etc/haproxy" in argv
    assert "reload" not in text.replace("no reload", "")
    # renew when a third of the lifetime is left
    assert "(na - nb) / 3" in text
    checked = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_status_lines_and_show_ssl_cert_are_parsed() -> None:
    status = acme.parse_status("a.test 2026-11-28T14:24:19Z failed attempt 2, next try in 60s: "
                               "connection refused\nb.test 2026-11-28T14:25:00Z ok issued\n")
    assert status["a.test"][1] == "failed" and "connection refused" in status["a.test"][2]
    assert status["b.test"] == ("2026-11-28T14:25:00Z", "ok", "issued")
    shown = api.parse_ssl_cert(
        "Filename: /usr/local/etc/haproxy/certs/b.test.pem\nStatus: Used\n"
        "Serial: 2AEB7E98F4EBE0BE\nnotBefore: Nov 28 14:24:43 2026 GMT\n"
        "notAfter: Nov 28 14:26:42 2026 GMT\nIssuer: /CN=Pebble Intermediate CA 018992\n")
    assert shown["Serial"] == "2AEB7E98F4EBE0BE"
    assert shown["notAfter"] == "Nov 28 14:26:42 2026 GMT"
    assert shown["Issuer"].startswith("/CN=Pebble")
    assert api.parse_ssl_cert("Can't display the certificate: Not found!\n") == {}
