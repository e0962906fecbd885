package proxy

import (
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/route"
)

// TestBuildL4 checks the L4 part of a table: ports and SNI names, the
// older route keeping a contested port, and the PROXY protocol setting.
func TestBuildL4(t *testing.T) {
	pool := balancer.NewPool(balancer.PoolOptions{})
	cfg := route.Config{Routes: []route.Route{
		{Service: "db", TCPPort: 5432, Port: 5432, Balancer: "p2c", ProxyProtocol: 2, Endpoints: []string{"10.0.0.1:5432"}, CreatedAt: time.Unix(1, 0)},
		{Service: "db-new", TCPPort: 5432, Port: 5432, Balancer: "p2c", Endpoints: []string{"10.0.0.2:5432"}, CreatedAt: time.Unix(2, 0)},
		{Service: "vault", SNI: []string{"Vault.example.org"}, Port: 8200, Balancer: "p2c", Endpoints: []string{"10.0.0.3:8200"}},
	}}
	tb := buildTable(cfg, pool, newUpstreams(time.Second), func(string) *retryBudget { return new(retryBudget) }, time.Now())
	db := tb.l4.TCP[5432]
	if db == nil || db.Service != "db" || db.ProxyProtocol != 2 {
		t.Fatalf("port 5432: %+v, want the older route db with PROXY v2", db)
	}
	if v := tb.l4.SNI["vault.example.org"]; v == nil || v.Service != "vault" {
		t.Fatalf("SNI vault.example.org: %+v", v)
	}
	if len(tb.errors) != 1 {
		t.Fatalf("rejections %v, want one for db-new's port", tb.errors)
	}
}
