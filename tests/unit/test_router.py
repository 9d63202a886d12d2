"""Router configuration, Runtime API lines and parsers (pure)."""

from __future__ import annotations

import pytest

from dockyard.router import api
from dockyard.router import config as rc

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,\
wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,\
tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,\
hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,\
comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,\
agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,\
agent_rise,agent_fall,agent_health,addr
slot01,slot01-web1,0,0,3,5,,10,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,2,0,,1,4,1,,0,,2,0,,0,L7OK,200,1,\
0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,3,4,,,,172.18.0.3:8080
slot01,slot01-web2,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),1,1,0,0,0,8,8,,1,4,2,,0,,2,\
0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,-
slot01,BACKEND,0,0,3,5,,10,0,0,,0,,0,0,0,0,UP,1,1,0,,0,2,0,,1,4,0,,0,,1,0,,0,,,,0,0,0,0,0,0,\
,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,
"""

SERVERS_STATE = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight \
srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state \
srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl \
srv_check_port srv_check_addr srv_agent_addr srv_agent_port
4 slot01 1 slot01-web1 172.18.0.3 2 4 1 1 0 1 0 1 6 0 0 0 hello-web-v3-abc123 8080 - 0 0 - - 0
4 slot01 2 slot01-web2 - 0 37 1 1 6 1 0 0 14 0 0 0 dockyard-router 8080 - 0 0 - - 0
"""


def test_parse_stat() -> None:
    stats = api.parse_stat(STAT)
    assert set(stats) == {("slot01", "slot01-web1"), ("slot01", "slot01-web2")}
    up = stats[("slot01", "slot01-web1")]
    assert up.up and up.serving and up.sessions == 3 and up.check == "L7OK"
    parked = stats[("slot01", "slot01-web2")]
    assert parked.maint and not parked.serving


def test_parse_servers_state() -> None:
    states = api.parse_servers_state(SERVERS_STATE)
    assert [(s.server, s.fqdn, s.op_state) for s in states] == [
        ("slot01-web1", "hello-web-v3-abc123", 2), ("slot01-web2", "dockyard-router", 0)]


def test_parse_map_and_info() -> None:
    text = "0x55d1 hello.test slot01\n0x55d2 www.hello.test slot01\n"
    assert api.parse_map(text) == {"hello.test": "slot01", "www.hello.test": "slot01"}
    assert api.parse_info("Name: HAProxy\nPid: 8\n")["Pid"] == "8"


def test_put_map_is_idempotent() -> None:
    assert api.put_map({"a": "slot01"}, "/m", "a", "slot01") == []
    assert [c.line for c in api.put_map({"a": "slot02"}, "/m", "a", "slot01")] == [
        "set map /m a slot01"]
    assert [c.line for c in api.put_map({}, "/m", "a", "slot01")] == ["add map /m a slot01"]


def test_api_lines() -> None:
    assert api.set_server_state("slot01", "slot01-web2", "drain").line == \
        "set server slot01/slot01-web2 state drain"
    assert api.set_server_fqdn("slot01", "slot01-web2", "hello-web-v2-aa").line == \
        "set server slot01/slot01-web2 fqdn hello-web-v2-aa"
    assert [c.line for c in api.park_server("slot01", "slot01-web1")] == [
        "set server slot01/slot01-web1 state maint",
        "set server slot01/slot01-web1 addr 127.0.0.1 port 1"]
    assert [c.line for c in api.park_server("slot01", "slot01-web1", named=True)][-1] == \
        "set server slot01/slot01-web1 fqdn dockyard-router"
    assert api.set_server_health_down("slot01", "slot01-web2").line == \
        "set server slot01/slot01-web2 health down"
    assert api.set_server_addr("slot03", "slot03-web1", "172.18.0.5", 3000).line == \
        "set server slot03/slot03-web1 addr 172.18.0.5 port 3000"
    assert not api.show_stat().changes and api.set_server_state("a", "b", "ready").changes
    with pytest.raises(ValueError):
        api.set_map("/m", "a;show info", "b")


def route() -> rc.Route:
    return rc.Route(app="hello", slot=3, port=8080, domains=["hello.test", "www.hello.test"],
                    health_path="/health", servers={"slot03-web2": "hello-web-v7-abcdef"})


def test_render_declares_every_slot_and_the_apps_current_server() -> None:
    text = rc.render([route()], socket_gid=0)
    assert text.count("\nbackend slot") == rc.SLOTS
    assert "backend slot03    # app hello" in text
    assert "    server slot03-web2 hello-web-v7-abcdef:8080\n" in text
    assert "    server slot03-web1 127.0.0.1:1 disabled\n" in text
    assert "    server slot01-web1 127.0.0.1:1 disabled\n" in text
    assert "stats socket /run/dockyard/admin.sock mode 660 gid 0 level admin" in text
    assert ("bind :8443 ssl crt /usr/local/etc/haproxy/certs/default.pem crt-list "
            "/usr/local/etc/haproxy/certs/crt-list alpn h2,http/1.1") in text
    # the certificate container reaches the API on the router's loopback only
    assert "stats socket ipv4@127.0.0.1:9999 level admin" in text
    assert "Strict-Transport-Security" not in text
    assert "timeout tunnel 3600s" in text
    assert "resolvers docker" in text and "nameserver dns 127.0.0.11:53" in text
    assert "uri-lf %[srv_name,map(/usr/local/etc/haproxy/health_uri.map,/up)]" in text
    assert rc.render([route()], socket_gid=0) == text  # deterministic


def test_https_settings_and_the_acme_path() -> None:
    text = rc.render([route()], socket_gid=0, hsts=True, tunnel_timeout_s=7200)
    assert 'http-response set-header Strict-Transport-Security "max-age=31536000"' in text
    assert "timeout tunnel 7200s" in text
    http = text[text.index("frontend http\n"):text.index("frontend https")]
    # challenges reach lego only for names the router serves; HTTPS redirect once a
    # certificate is installed, never for challenges
    assert "use_backend acme if acme_challenge known_host" in http
    assert "redirect scheme https code 301 if has_cert !acme_challenge" in http
    assert "map(/usr/local/etc/haproxy/tls.map)" in http
    assert http.index("redirect scheme") < http.index("use_backend acme")
    assert "server lego 127.0.0.1:8402" in text
    assert "X-Forwarded-Host" in http


def test_render_maps() -> None:
    maps = rc.render_maps([route()])
    assert maps["hosts.map"] == "hello.test slot03\nwww.hello.test slot03\n"
    assert "slot03-web1 /health\n" in maps["health_uri.map"]
    assert "slot03-web4 hello.test\n" in maps["health_host.map"]
    assert rc.render_maps([]) == {"hosts.map": "", "health_uri.map": "", "health_host.map": "",
                                  "maintenance.map": "", "cluster.map": ""}


def test_a_cluster_app_retries_unanswered_gets_after_its_response_timeout() -> None:
    """One server: the backend is not in cluster.map (only failed connections are retried);
    a cluster app's is, with its response_timeout."""
    one = route()
    assert rc.render_maps([one])["cluster.map"] == ""
    assert b"cluster" not in one.to_json()  # route.json of one server: as it always was
    many = rc.Route(app="web", slot=5, port=8000, cluster=True, response_timeout_ms=4000)
    assert rc.render_maps([one, many])["cluster.map"] == "slot05 4000\n"
    text = rc.render([one, many], socket_gid=0)
    backend = text[text.index("backend slot05"):text.index("backend slot06")]
    assert "retry-on conn-failure empty-response response-timeout" in backend
    assert "disable-l7-retry unless { method GET HEAD } { be_name,map(" in backend
    assert "set-timeout server be_name,map_str_int(/usr/local/etc/haproxy/cluster.map) if" in backend
    assert rc.Route.from_json(many.to_json().decode()) == many


def test_every_backend_answers_503_in_maintenance() -> None:
    text = rc.render([route()], socket_gid=0)
    rule = ("http-request return status 503 content-type \"text/html; charset=utf-8\" file "
            "/usr/local/etc/haproxy/maintenance.html hdr Retry-After 30 if "
            "{ be_name,map(/usr/local/etc/haproxy/maintenance.map) -m found }")
    assert text.count(rule) == rc.SLOTS


def test_server_names_are_unique_across_backends() -> None:
    names = [n for slot in range(1, rc.SLOTS + 1) for n in rc.server_names(slot)]
    assert len(names) == len(set(names)) == rc.SLOTS * rc.SERVERS


RING = (
    "<6>2026-12-02T00:05:15.653865+00:00 127.0.0.1:51996 [02/Dec/2026:00:05:15.653] http "
    'slot01/slot01-web1 0/0/0/1/1 200 74 - - ---- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"\n'
    "<6>2026-12-02T00:05:15.664962+00:00 127.0.0.1:52010 [02/Dec/2026:00:05:15.664] http "
    'no_app/<NOSRV> 0/-1/-1/-1/0 404 83 - - LR-- 1/1/0/0/0 0/0 "GET / HTTP/1.1"\n'
    "<3>2026-12-02T00:05:18.679588+00:00 127.0.0.1:52014 [02/Dec/2026:00:05:15.673] https "
    'slot02/slot02-web1 0/0/-1/-1/3006 503 217 - - SC-- 1/1/0/0/3 0/0 "POST /y?a=1 HTTP/1.1"\n'
    "<1>2026-12-02T00:05:19.000000+00:00 Server slot02/slot02-web1 is DOWN, reason: Layer4 "
    "connection problem\n")


def test_the_request_log_is_read_from_the_rings() -> None:
    from datetime import datetime

    from dockyard.router import logs

    apps = {"slot01": "hello", "slot02": "blog"}
    found = logs.parse(RING, apps)
    assert [(r.app, r.status, r.method, r.path, r.took_ms) for r in found[:3]] == [
        ("hello", 200, "GET", "/x", 1), ("", 404, "GET", "/", 0),
        ("blog", 503, "POST", "/y?a=1", 3006)]
    assert [r.error for r in found] == [False, False, True, True]
    assert found[3].event.startswith("Server slot02/slot02-web1 is DOWN")
    assert [r.path for r in found if logs.keep(r, status="5xx")] == ["/y?a=1"]
    assert [r.path for r in found if logs.keep(r, status="404,503")] == ["/", "/y?a=1"]
    assert [r.path for r in found if logs.keep(r, app="hello")] == ["/x"]
    late = datetime.fromisoformat("2026-12-02T00:05:16+00:00")
    assert [r.status for r in found if logs.keep(r, since=late)] == [503, 0]
    both = logs.merged(found[:2], found[2:] + found[:1])
    assert [r.path for r in both] == ["/x", "/", "/y?a=1", ""]  # each once, oldest first
    assert "blog  503  POST /y?a=1  3006 ms" in found[2].line()


def test_the_router_keeps_its_request_log_in_memory_not_in_dockers_log() -> None:
    text = rc.render([rc.Route(app="a", slot=1, port=80)], socket_gid=0)
    assert "log stdout" not in text
    assert "log ring@requests local0 info" in text and "log ring@errors local0 err" in text
    assert "option log-separate-errors" in text


def test_a_router_behind_a_local_web_server_keeps_its_forwarded_proto() -> None:
    from dockyard.config.model import ProxyConfig
    from dockyard.router import container

    plain = rc.render([], socket_gid=0)
    assert "    http-request set-header X-Forwarded-Proto http\n" in plain
    behind = rc.render([], socket_gid=0, behind_proxy=True)
    assert ("X-Forwarded-Proto http unless { req.hdr(x-forwarded-proto) -m found }"
            in behind)
    local = ProxyConfig(bind="127.0.0.1", http_port=8080, https_port=8443)
    assert local.behind_proxy and not ProxyConfig().behind_proxy
    argv = container.run_holder(local).argv  # the holder publishes the ports
    assert "--publish=127.0.0.1:8080:8080" in argv and "--publish=127.0.0.1:8443:8443" in argv
    # the default publishes on every address, IPv6 too, as before
    assert "--publish=80:8080" in container.run_holder(ProxyConfig()).argv
