package l4

import (
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/balancer"
	"github.com/swarmgate/swarmgate/route"
)

// TestBuild checks the L4 table of a Config: ports and SNI names, the
// older route keeping a contested port, and the PROXY protocol setting.
func TestBuild(t *testing.T) {
	pool := balancer.NewPool(balancer.PoolOptions{})
	cfg := route.Config{Routes: []route.Route{
		{Service: "db", TCPPort: 5432, Port: 5432, Balancer: "p2c", ProxyProtocol: 2, Endpoints: []string{"10.0.0.1:5432"}, CreatedAt: time.Unix(1, 0)},
		{Service: "db-new", TCPPort: 5432, Port: 5432, Balancer: "p2c", Endpoints: []string{"10.0.0.2:5432"}, CreatedAt: time.Unix(2, 0)},
		{Service: "vault", SNI: []string{"Vault.example.org"}, Port: 8200, Balancer: "p2c", Endpoints: []string{"10.0.0.3:8200"}},
	}}
	tb, _, rejected := Build(cfg, pool)
	db := tb.TCP[5432]
	if db == nil || db.Service != "db" || db.ProxyProtocol != 2 {
		t.Fatalf("port 5432: %+v, want the older route db with PROXY v2", db)
	}
	if v := tb.SNI["vault.example.org"]; v == nil || v.Service != "vault" {
		t.Fatalf("SNI vault.example.org: %+v", v)
	}
	if len(rejected) != 1 {
		t.Fatalf("rejections %v, want one for db-new's port", rejected)
	}
}
