package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
	"github.com/swarmgate/swarmgate/route"
)

// A route with inline users (swarmgate.auth.users) answers 401 with a
// challenge without or with wrong credentials and 200 with right ones, of
// each kind of hash; Describe (the admin API's routes) names the users and
// shows no hash, and neither does what the table says of a route it cannot
// serve.
func TestInlineBasicUsers(t *testing.T) {
	backend := testkit.Backend(t, "admin")
	users := []route.BasicUser{
		{Name: "alice", Hash: "$2y$05$TZrJ4JHFs.KQ/X8exRrv8u0rrY1Vd8ZONE4CJ8.Cl20pMOfQJzoIW"}, // s3cret
		{Name: "bob", Hash: "$apr1$ZpBGf2ut$96kE.ynCexCvJFV/sKnFB."},                          // hunter2
		{Name: "carol", Hash: "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="},                            // correct horse
	}
	admin := testkit.Route("admin", []string{"admin.example.org"}, "/", testkit.Addr(backend))
	admin.Policy = &route.Policy{BasicUsers: users, BasicRealm: "Admin"}
	broken := testkit.Route("broken", []string{"broken.example.org"}, "/", testkit.Addr(backend))
	broken.Policy = &route.Policy{BasicUsers: []route.BasicUser{{Name: "eve", Hash: "pl4in-text-pw"}}}
	e := startEdgeWith(t, route.Config{Routes: []route.Route{admin, broken}}, Options{DialTimeout: time.Second})

	send := func(host, user, pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = host
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{
		{"", "", 401}, {"alice", "S3cret", 401}, {"bob", "", 401}, {"mallory", "hunter2", 401},
		{"alice", "s3cret", 200}, {"bob", "hunter2", 200}, {"carol", "correct horse", 200},
	} {
		resp := send("admin.example.org", c.user, c.pass)
		if resp.StatusCode != c.want {
			t.Errorf("%q:%q: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
		if got := resp.Header.Get("WWW-Authenticate"); c.want == 401 && got != `Basic realm="Admin", charset="UTF-8"` {
			t.Errorf("%q:%q: WWW-Authenticate %q", c.user, c.pass, got)
		}
	}
	// A user the edge cannot check keeps the route from being served
	// without its auth.
	if resp := send("broken.example.org", "eve", "pl4in-text-pw"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a route with an unusable user: %d, want 503", resp.StatusCode)
	}

	desc, err := json.Marshal(e.p.Table().Describe(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	out := string(desc) + fmt.Sprint(e.p.Table().Rejected()) + fmt.Sprintf("%+v", e.p.Table().Describe(time.Now()))
	if !strings.Contains(string(desc), `"alice"`) || !strings.Contains(string(desc), `"carol"`) {
		t.Errorf("Describe does not name the users: %s", desc)
	}
	for _, secret := range []string{"TZrJ4JHFs", "8.Cl20pMOfQJzoIW", "ZpBGf2ut", "96kE.ynCexCvJFV", "L55TUjtiq8FBorTWAZ0jy6g129A", "pl4in-text-pw"} {
		if strings.Contains(out, secret) {
			t.Errorf("the table shows %q: %s", secret, out)
		}
	}
}
