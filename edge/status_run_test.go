package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// oneShot is a source that delivers one Config and waits.
type oneShot struct{ cfg route.Config }

func (o oneShot) Name() string { return "one-shot" }
func (o oneShot) Run(ctx context.Context, update func(route.Config)) error {
	update(o.cfg)
	<-ctx.Done()
	return nil
}

// TestRunStatus: Run wires the status page to the certificate directory
// and to its sources' updates.
func TestRunStatus(t *testing.T) {
	certs := t.TempDir()
	testkit.NewCA(t, "swarmgate test CA").Issue(t, "shop.example.org").WriteFiles(t, certs, "shop")
	shop := testkit.Route("shop", []string{"shop.example.org"}, "/", testkit.UnusedAddr(t))
	shop.TLS = "shop"
	admin := testkit.UnusedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Sources:   []route.Source{oneShot{route.Config{Routes: []route.Route{shop}, Changed: time.Now()}}},
			AdminAddr: admin, Registry: prometheus.NewRegistry(), Logger: zaptest.NewLogger(t),
			TLS: TLSOptions{Certs: certs}, DrainTimeout: time.Second,
		})
	}()
	defer func() {
		cancel()
		if err := testkit.Receive(t, done, 10*time.Second, "end of Run"); err != nil {
			t.Error(err)
		}
	}()
	var v StatusView
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + admin + "/api/status")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		v = StatusView{}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return err
		}
		if len(v.Table.Routes) != 1 {
			return fmt.Errorf("%d routes in the table, want 1", len(v.Table.Routes))
		}
		return nil
	})
	if len(v.Certificates) != 1 || v.Certificates[0].Name != "shop" || len(v.Certificates[0].Routes) != 1 {
		t.Errorf("certificates %+v: want shop, named by its route", v.Certificates)
	}
	if len(v.Sources) != 1 || v.Sources[0].Updated.IsZero() || v.Sources[0].Changed.IsZero() {
		t.Errorf("sources %+v: want one-shot's update and change", v.Sources)
	}
}
