package tlsstore

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestOCSPStaple: a directory certificate that names an OCSP responder and
// carries its issuer is stapled with the responder's answer, which clients
// get in the handshake; a revoked one and one without a responder are
// served without a staple.
func TestOCSPStaple(t *testing.T) {
	ca := testkit.NewCA(t, "ocsp CA")
	var asked atomic.Int32
	var revoked atomic.Pointer[string] // serial the responder calls revoked
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status := ocsp.Good
		if s := revoked.Load(); s != nil && *s == req.SerialNumber.String() {
			status = ocsp.Revoked
		}
		now := time.Now()
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: status, SerialNumber: req.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)}, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(resp)
	}))
	t.Cleanup(responder.Close)

	dir := t.TempDir()
	write := func(name string, l *testkit.Leaf) {
		testkit.WriteFile(t, dir, name+".crt", append(append([]byte{}, l.CertPEM...), ca.PEM...))
		testkit.WriteFile(t, dir, name+".key", l.KeyPEM)
	}
	good := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"good.example.org"}, OCSPServer: []string{responder.URL}})
	bad := ca.IssueLeaf(t, testkit.LeafOptions{Names: []string{"revoked.example.org"}, OCSPServer: []string{responder.URL}})
	s := bad.Cert.SerialNumber.String()
	revoked.Store(&s)
	write("good", good)
	write("revoked", bad)
	write("plain", ca.Issue(t, "plain.example.org"))

	store, err := New(Options{Dir: dir, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { store.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	addr := serveGreeting(t, ServerConfig(store.GetCertificate, ConfigOptions{}))
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if c, _ := store.Lookup("good"); len(c.OCSPStaple) == 0 {
			return errors.New("no staple yet")
		}
		return nil
	})
	cs, err := dialGreeting(addr, &tls.Config{RootCAs: ca.Pool, ServerName: "good.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.ParseResponseForCert(cs.OCSPResponse, good.Cert, ca.Cert)
	if err != nil || r.Status != ocsp.Good {
		t.Fatalf("stapled response: %v, %v", r, err)
	}
	n := asked.Load()
	time.Sleep(100 * time.Millisecond) // several polls: the staple is fresh, nothing more is asked
	if got := asked.Load(); got != n || n != 2 {
		t.Fatalf("responder asked %d then %d times, want 2 (good and revoked, once each)", n, got)
	}
	for _, name := range []string{"revoked", "plain"} {
		if c, _ := store.Lookup(name); len(c.OCSPStaple) != 0 {
			t.Errorf("%s: stapled", name)
		}
	}
	if cs, err := dialGreeting(addr, &tls.Config{RootCAs: ca.Pool, ServerName: "revoked.example.org"}); err != nil || len(cs.OCSPResponse) != 0 {
		t.Errorf("revoked: handshake %v, staple of %d bytes; want served, no staple", err, len(cs.OCSPResponse))
	}
}
