package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestPolicyReadmeExample serves the routes file of policy/README.md, its
// endpoint replaced by a live backend, and checks what the README says it
// does.
func TestPolicyReadmeExample(t *testing.T) {
	doc, err := os.ReadFile("../policy/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```yaml\nservices:")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("no routes file example in policy/README.md")
	}
	var seen http.Header
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Server", "upstream/1.0")
		w.Header().Set("Content-Type", "text/html")
		w.Write(bytes.Repeat([]byte("<p>admin</p>"), 400))
	}))
	defer backend.Close()
	cfg, err := discovery.ParseRoutesFile([]byte("services:" + strings.ReplaceAll(block, "127.0.0.1:9000", testkit.Addr(backend))))
	if err != nil || len(cfg.Errors) > 0 || len(cfg.Routes) != 1 {
		t.Fatalf("the example: %v %v %d routes", err, cfg.Errors, len(cfg.Routes))
	}
	secrets := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	os.WriteFile(filepath.Join(secrets, "admin.htpasswd"), []byte("alice:"+string(hash)+"\n"), 0o600)
	e := startEdgeWith(t, cfg, Options{DialTimeout: time.Second, SecretsDir: secrets})

	send := func(auth bool, body io.Reader) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", body)
		req.Host = "admin.example.org"
		req.Header.Set("Accept-Encoding", "gzip")
		if auth {
			req.SetBasicAuth("alice", "s3cret")
		}
		resp, err := e.client.Transport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := send(false, nil); resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="Shop admin"`) {
		t.Errorf("without credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp := send(true, strings.NewReader("form=1"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.Header.Get("Server") != "" {
		t.Errorf("with credentials: %d, fields %v", resp.StatusCode, resp.Header)
	}
	if seen.Get("X-Tenant") != "shop" || seen.Get("Authorization") != "" {
		t.Errorf("the upstream saw %v", seen)
	}
	if resp := send(true, bytes.NewReader(make([]byte, 1<<20+1))); resp.StatusCode != 413 {
		t.Errorf("a body over 1m: %d", resp.StatusCode)
	}
	limited := 0
	for range 20 {
		if send(true, nil).StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("20 requests at once with ratelimit 5/s, burst 10: none was limited")
	}
}
