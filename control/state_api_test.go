package control

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestStateOverMutualTLS serves the fleet state on the stream's listener
// with mutual TLS: an edge with a certificate of the CA stores, reads and
// locks; one without gets nothing; the stream still answers beside it.
func TestStateOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t, "control CA")
	srvCert, srvKey := ca.Issue(t, "127.0.0.1").WriteFiles(t, dir, "control")
	caFile := testkit.WriteFile(t, dir, "ca.pem", ca.PEM)
	edgeCert, edgeKey := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"edge-1"}, Client: true}).WriteFiles(t, dir, "edge")
	serverTLS, err := ServerTLSConfig(srvCert, srvKey, caFile)
	if err != nil {
		t.Fatal(err)
	}
	listen := testkit.UnusedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Source: blockSource{}, Listen: listen, TLS: serverTLS, State: &fleet.Memory{},
			Registry: prometheus.NewRegistry(), Logger: zaptest.NewLogger(t), DrainTimeout: time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		testkit.Receive(t, done, 10*time.Second, "Run to return")
	})

	client := func(cert, key string) *fleet.Client {
		conf, err := ClientTLSConfig(cert, key, caFile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := fleet.NewClient(fleet.ClientOptions{Addrs: []string{"tcp://" + listen}, TLS: conf, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	edge := client(edgeCert, edgeKey)
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		return edge.Store(ctx, "certificates/a.example.org/a.crt", []byte("chain"))
	})
	if v, err := edge.Load(ctx, "certificates/a.example.org/a.crt"); err != nil || string(v) != "chain" {
		t.Fatalf("Load = %q, %v", v, err)
	}
	if _, err := edge.Load(ctx, "certificates/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v", err)
	}
	if err := edge.Lock(ctx, "issue_cert_a.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := edge.Unlock(ctx, "issue_cert_a.example.org"); err != nil {
		t.Fatal(err)
	}
	stray := client("", "")
	if _, err := stray.Load(ctx, "certificates/a.example.org/a.crt"); err == nil {
		t.Fatal("an edge without a client certificate read the state")
	}
}
