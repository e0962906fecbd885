package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestPolicies runs route policies in the real Swarm: basic auth from a
// Docker secret attached to the edge, and forward auth asking a service on
// the overlay.
func TestPolicies(t *testing.T) {
	// The htpasswd file is a Docker secret, mounted in the edge's secrets
	// directory.
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := prefix + "-htpasswd"
	docker("secret", "rm", secret)
	mustDocker(t, "secret", "create", secret, file)
	t.Cleanup(func() { docker("secret", "rm", secret) })
	updateEdge(t, "--secret-add", secret)
	t.Cleanup(func() { updateEdge(t, "--secret-rm", secret) })

	// Reached by its name: dnsrr, since this engine has no IPVS for VIPs.
	auth := createEcho(t, "pol-auth", 1, nil, "--endpoint-mode", "dnsrr")
	createEcho(t, "pol-basic", 1, map[string]string{
		"swarmgate.hosts": "basic.e2e.test", "swarmgate.port": "8000",
		"swarmgate.auth.basic": secret, "swarmgate.auth.basic.realm": "e2e",
	})
	createEcho(t, "pol-fwd", 1, map[string]string{
		"swarmgate.hosts": "fwd.e2e.test", "swarmgate.port": "8000",
		"swarmgate.auth.forward":         "http://" + auth.name + ":8000/verify",
		"swarmgate.auth.forward.headers": "Remote-User",
	})
	waitStatus(t, "basic.e2e.test", "/", http.StatusUnauthorized, 90*time.Second)

	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(host string, header map[string]string, user, pass string) (*http.Response, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+edgeHTTP+"/page", nil)
		req.Host = host
		for k, v := range header {
			req.Header.Set(k, v)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var a map[string]string
		json.Unmarshal(body, &a)
		return resp, a
	}

	t.Run("basic auth", func(t *testing.T) {
		if resp, _ := do("basic.e2e.test", nil, "", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="e2e", charset="UTF-8"` {
			t.Fatalf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if resp, _ := do("basic.e2e.test", nil, "alice", "wrong"); resp.StatusCode != 401 {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
		resp, a := do("basic.e2e.test", nil, "alice", "s3cret")
		if resp.StatusCode != 200 || a["service"] != prefix+"-pol-basic" {
			t.Fatalf("right password: %d %v", resp.StatusCode, a)
		}
		if a["auth"] != "" {
			t.Fatalf("the credentials reached the task: %q", a["auth"])
		}
	})
	t.Run("forward auth", func(t *testing.T) {
		waitFor(t, 60*time.Second, "fwd.e2e.test answering through the auth service", func() bool {
			req, _ := http.NewRequest("GET", "http://"+edgeHTTP+"/", nil)
			req.Host = "fwd.e2e.test"
			resp, err := noRedirect.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusFound
		})
		resp, _ := do("fwd.e2e.test", nil, "", "")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://login.e2e.test/?next=/page" {
			t.Fatalf("without the token: %d Location %q; want the auth service's redirect to login", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, a := do("fwd.e2e.test", map[string]string{"X-Token": "letmein", "Remote-User": "mallory"}, "", "")
		if resp.StatusCode != 200 || a["service"] != prefix+"-pol-fwd" || a["user"] != "tester" {
			t.Fatalf("with the token: %d %v; want the task, with Remote-User from the auth service", resp.StatusCode, a)
		}
	})
}
