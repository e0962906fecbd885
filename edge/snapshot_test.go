package edge

import (
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

func TestMergeFiltersCluster(t *testing.T) {
	a := route.Config{Routes: []route.Route{{Service: "a"}, {Service: "b", Cluster: "blue"}}}
	b := route.Config{Routes: []route.Route{{Service: "c"}}, Errors: []*route.LabelError{{Service: "x"}}}
	got := Merge(route.DefaultCluster, a, b)
	if len(got.Routes) != 2 || got.Routes[0].Service != "a" || got.Routes[1].Service != "c" || len(got.Errors) != 1 {
		t.Errorf("default cluster: %+v", got)
	}
	if got := Merge("blue", a, b); len(got.Routes) != 1 || got.Routes[0].Service != "b" {
		t.Errorf("blue cluster: %+v", got)
	}
}

// TestSnapshotTLSHosts checks the certificate and ACME host sets: exact
// names before wildcards, the older route's certificate for a host both
// name, ACME for exact tls=auto hosts only.
func TestSnapshotTLSHosts(t *testing.T) {
	routes := []route.Route{
		{Service: "old", Hosts: []string{"App.example.org", "*.example.org"}, Path: "/", TLS: "wild", CreatedAt: time.Unix(1, 0)},
		{Service: "new", Hosts: []string{"app.example.org"}, Path: "/api", TLS: "other", CreatedAt: time.Unix(2, 0)},
		{Service: "exact", Hosts: []string{"shop.example.org"}, Path: "/", TLS: "shop", CreatedAt: time.Unix(3, 0)},
		{Service: "auto", Hosts: []string{"auto.example.net", "*.auto.example.net"}, Path: "/", TLS: route.TLSAuto},
		{Service: "plain", Hosts: []string{"plain.example.net"}, Path: "/", TLS: route.TLSOff},
	}
	for i := range routes {
		routes[i].Port, routes[i].Weight = 80, 1
	}
	s := startEdge(t, route.Config{Routes: routes}, time.Second).e.Snapshot()
	for _, c := range []struct {
		host, cert string
		acme       bool
	}{
		{"app.example.org", "wild", false},
		{"APP.example.org.", "wild", false},
		{"shop.example.org", "shop", false},
		{"a.b.example.org", "wild", false},
		{"example.org", "", false},
		{"auto.example.net", "", true},
		{"x.auto.example.net", "", false},
		{"plain.example.net", "", false},
	} {
		name, ok := s.CertFor(c.host)
		if name != c.cert || ok != (c.cert != "") {
			t.Errorf("CertFor(%q) = %q, %v; want %q", c.host, name, ok, c.cert)
		}
		if got := s.ACMEHost(c.host); got != c.acme {
			t.Errorf("ACMEHost(%q) = %v, want %v", c.host, got, c.acme)
		}
	}
	if s.tlsName("shop.example.org") == s.tlsName("app.example.org") || s.tlsName("auto.example.net") == "" {
		t.Errorf("tlsName: shop %q app %q auto %q", s.tlsName("shop.example.org"), s.tlsName("app.example.org"), s.tlsName("auto.example.net"))
	}
}
