package proxy

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

func TestAcceptsHTML(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},
		{[]string{"application/json", "Text/HTML ; q=0.5"}, true},
		{[]string{"*/*"}, false},
		{[]string{"text/html;q=0"}, false},
		{[]string{"text/html; level=1; q=0.000"}, false},
		{[]string{"text/htmlx"}, false},
	} {
		if got := acceptsHTML(tc.accept); got != tc.want {
			t.Errorf("acceptsHTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

func TestErrorPage(t *testing.T) {
	secrets, configs := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(secrets, "shop.html"), []byte("<h1>shop is resting</h1>"), 0o600)
	os.WriteFile(filepath.Join(configs, "config.html"), []byte("<h1>from a config</h1>"), 0o600)
	os.WriteFile(filepath.Join(configs, "huge.html"), make([]byte, maxErrorPage+1), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	withPage := func(name, host, page string, endpoints ...string) route.Route {
		r := testkit.Route(name, []string{host}, "/", endpoints...)
		r.Policy = &route.Policy{ErrorPage: page}
		return r
	}
	up := testkit.Backend(t, "up")
	e := startEdgeWith(t, route.Config{Routes: []route.Route{
		withPage("down", "down.example.org", "shop.html", refused),      // 502
		withPage("empty", "empty.example.org", "config.html"),           // 503
		withPage("up", "up.example.org", "shop.html", testkit.Addr(up)), // 404 and 200 are not the page's
		withPage("huge", "huge.example.org", "huge.html"),
		withPage("absent", "absent.example.org", "absent.html"),
	}}, Options{DialTimeout: 10 * time.Second, MaxAttempts: 1, SecretsDir: secrets, ConfigsDir: configs})

	get := func(host, path, accept string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
		req.Host = host
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAll(t, resp)
	}
	const browser = "text/html,application/xhtml+xml,*/*;q=0.8"
	tests := []struct {
		host, path, accept string
		code               int
		body, ctype        string
	}{
		{"down.example.org", "/", browser, 502, "<h1>shop is resting</h1>", "text/html; charset=utf-8"},
		{"down.example.org", "/", "*/*", 502, "Bad Gateway\n", "text/plain; charset=utf-8"},
		{"empty.example.org", "/", browser, 503, "<h1>from a config</h1>", "text/html; charset=utf-8"},
		{"empty.example.org", "/", "", 503, "Service Unavailable\n", "text/plain; charset=utf-8"},
		{"up.example.org", "/x", browser, 200, "up GET /x", ""},
		{"huge.example.org", "/", browser, 503, "Service Unavailable\n", "text/plain; charset=utf-8"},
		{"absent.example.org", "/", browser, 503, "Service Unavailable\n", "text/plain; charset=utf-8"},
	}
	for _, tc := range tests {
		resp, body := get(tc.host, tc.path, tc.accept)
		if resp.StatusCode != tc.code || body != tc.body || tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s Accept %q: %d %q %q, want %d %q %q", tc.host, tc.accept, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.ctype, tc.body)
		}
		if tc.code >= 502 && tc.host != "huge.example.org" && tc.host != "absent.example.org" && resp.Header.Get("Vary") != "Accept" {
			t.Errorf("%s: Vary %q", tc.host, resp.Header.Get("Vary"))
		}
	}
	rej := strings.Join(e.p.Table().Rejected(), "\n")
	for _, want := range []string{"route huge: errors.page huge.html (served as plain text): larger than 262144 bytes", "route absent: errors.page absent.html"} {
		if !strings.Contains(rej, want) {
			t.Errorf("Rejected() = %q, want %q in it", rej, want)
		}
	}
}
