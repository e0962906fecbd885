package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// confDir is bench/conf, from this package's directory.
const confDir = "../../conf"

func testConf() confData {
	return confData{Dir: "/w/p", Certs: "/w/certs", ProxyPort: 19001, BackendPort: 19000, Ciphers: tlsCiphers}
}

// holdConf is testConf for the idle and ws suites.
func holdConf() confData {
	c := testConf()
	c.Hold = true
	return c
}

// TestRender renders every configuration of bench/conf and checks the lines
// that make it what the README says it is, and those it must not have.
func TestRender(t *testing.T) {
	t.Parallel()
	root := testConf()
	root.Root = true
	stream := testConf()
	stream.StreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"
	tests := []struct {
		proxy, suite string
		data         confData
		want         []string // lines, whitespace trimmed
		notWant      []string // substrings
	}{
		{"nginx", "http", testConf(), []string{
			"worker_processes 1;", "pid /w/p/nginx.pid;", "error_log /w/p/error.log warn;",
			"listen 127.0.0.1:19001;", "server 127.0.0.1:19000;", "keepalive 64;", "keepalive_requests 1000000;",
			"proxy_http_version 1.1;", `proxy_set_header Connection "";`, "proxy_set_header X-Request-Id $request_id;",
			"proxy_buffers 16 8k;", "client_body_temp_path /w/p/client_body;", "access_log off;",
		}, []string{"ssl", "user root", "stream {", "load_module"}},
		{"nginx", "http", root, []string{"user root;"}, nil},
		{"nginx", "tls", testConf(), []string{
			"listen 127.0.0.1:19001 ssl http2;", "ssl_certificate /w/certs/bench.crt;", "ssl_certificate_key /w/certs/bench.key;",
			"ssl_protocols TLSv1.2 TLSv1.3;", "ssl_ciphers " + tlsCiphers + ";", "ssl_ecdh_curve X25519:prime256v1;",
			"ssl_session_cache shared:SSL:10m;", "ssl_session_tickets on;", "proxy_pass http://backend;",
		}, []string{"stream {"}},
		{"nginx", "l4", testConf(), []string{
			"worker_processes 1;", "stream {", "listen 127.0.0.1:19001;", "proxy_pass 127.0.0.1:19000;", "proxy_timeout 60s;",
		}, []string{"http {", "load_module"}},
		{"nginx", "l4", stream, []string{"load_module /usr/lib/nginx/modules/ngx_stream_module.so;"}, nil},
		{"haproxy", "http", testConf(), []string{
			"nbthread 1", "mode http", "http-reuse always", "option forwardfor", "unique-id-header X-Request-Id",
			"bind 127.0.0.1:19001", "http-request set-header X-Forwarded-Proto http", "server origin 127.0.0.1:19000",
			"timeout connect 5s", "timeout http-keep-alive 65s",
		}, []string{"ssl", "mode tcp", "log ", "set-uri"}},
		{"haproxy", "tls", testConf(), []string{
			"bind 127.0.0.1:19001 ssl crt /w/certs/bench.pem ssl-min-ver TLSv1.2 curves X25519:P-256 ciphers " + tlsCiphers + " alpn h2,http/1.1",
			"http-request set-header X-Forwarded-Proto https", "mode http",
		}, []string{"mode tcp"}},
		{"haproxy", "l4", testConf(), []string{
			"nbthread 1", "mode tcp", "timeout client 60s", "bind 127.0.0.1:19001", "server sink 127.0.0.1:19000",
		}, []string{"mode http", "splice", "ssl"}},
		{"swarmgate", "http", testConf(), []string{
			"- name: bench", "swarmgate.hosts: bench.local", `swarmgate.port: "19000"`, "swarmgate.balancer: round-robin",
			`endpoints: ["127.0.0.1"]`,
		}, []string{"swarmgate.tls", "tcp"}},
		{"nginx", "slow", testConf(), []string{
			"worker_processes 1;", "listen 127.0.0.1:19001;", "server 127.0.0.1:19000;", "keepalive 64;", "proxy_pass http://backend;",
		}, []string{"ssl", "stream {", "proxy_request_buffering off", "client_header_timeout", "client_body_timeout", "send_timeout"}},
		{"haproxy", "slow", testConf(), []string{
			"nbthread 1", "mode http", "bind 127.0.0.1:19001", "server origin 127.0.0.1:19000", "timeout client 60s",
			"http-request set-header X-Forwarded-Proto http", "http-request set-uri %[pathq]",
		}, []string{"ssl", "http-buffer-request", "timeout http-request"}},
		{"swarmgate", "slow", testConf(), []string{"swarmgate.hosts: bench.local", `swarmgate.port: "19000"`}, []string{"swarmgate.tls", "tcp"}},
		{"swarmgate", "tls", testConf(), []string{"swarmgate.hosts: bench.local", "swarmgate.tls: bench", `swarmgate.port: "19000"`}, nil},
		{"swarmgate", "l4", testConf(), []string{"- name: bulk", `swarmgate.tcp.port: "19001"`, `swarmgate.port: "19000"`}, []string{"hosts"}},
		{"nginx", "hold", holdConf(), []string{
			"worker_rlimit_nofile 65536;", "worker_connections 50000;", "location /ws {", "proxy_set_header Upgrade $http_upgrade;",
			`proxy_set_header Connection "upgrade";`, "proxy_pass http://backend;",
		}, []string{"ssl", "worker_connections 4096;"}},
		{"haproxy", "hold", holdConf(), []string{"maxconn 50000", "no strict-limits", "mode http", "server origin 127.0.0.1:19000"}, []string{"ssl", "maxconn 8192"}},
		{"swarmgate", "hold", holdConf(), []string{"swarmgate.hosts: bench.local", `swarmgate.port: "19000"`}, []string{"swarmgate.tls"}},
		{"nginx", "http", testConf(), []string{"worker_connections 4096;"}, []string{"location /ws", "worker_rlimit_nofile"}},
	}
	for _, tt := range tests {
		t.Run(tt.proxy+"-"+tt.suite, func(t *testing.T) {
			got, err := render(confDir, tt.proxy, tt.suite, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(got, "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, w := range tt.want {
				if !lines[w] {
					t.Errorf("no line %q in\n%s", w, got)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("%q in\n%s", nw, got)
				}
			}
			if strings.Contains(got, "<no value>") || strings.Contains(got, "{{") {
				t.Errorf("unexpanded template in\n%s", got)
			}
			if strings.HasPrefix(got, "\n") || !strings.HasSuffix(got, "\n") || strings.HasSuffix(got, "\n\n") {
				t.Errorf("want no leading blank line and exactly one final newline:\n%q", got)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("p.common", `{{define "x"}}x{{end}}`)
	write("p-ok.conf", `{{template "x" .}} {{.ProxyPort}}`)
	write("p-badfield.conf", `{{.NoSuchField}}`)
	write("p-syntax.conf", `{{if}}`)
	write("q-ok.conf", `q`)
	if got, err := render(dir, "p", "ok", testConf()); err != nil || got != "x 19001" {
		t.Errorf("render p-ok = %q, %v", got, err)
	}
	for _, c := range []struct{ proxy, suite string }{
		{"p", "missing"}, {"p", "badfield"}, {"p", "syntax"}, {"q", "ok"}, // q has no q.common
	} {
		if _, err := render(dir, c.proxy, c.suite, testConf()); err == nil {
			t.Errorf("render %s-%s: no error", c.proxy, c.suite)
		}
	}
}
