package route

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const testHash = "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"

// A route with inline users, printed every way a log line or an API could
// print it, names the users and never shows a hash.
func TestSecretIsWithheld(t *testing.T) {
	r := Route{Service: "admin", Hosts: []string{"admin.example.org"},
		Policy: &Policy{BasicUsers: []BasicUser{{Name: "alice", Hash: testHash}, {Name: "bob", Hash: "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="}}}}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", r.Policy), "%+v": fmt.Sprintf("%+v", r.Policy), "%#v": fmt.Sprintf("%#v", *r.Policy),
		"%s": fmt.Sprintf("%s", r.Policy.BasicUsers), "%q": fmt.Sprintf("%q", r.Policy.BasicUsers[0].Hash),
		"%x": fmt.Sprintf("%x", r.Policy.BasicUsers[0].Hash), "json": string(js),
	}
	for how, out := range outputs {
		if strings.Contains(out, "apr1") || strings.Contains(out, "qUqP5") || strings.Contains(out, "6175") /* "au" in hex */ {
			t.Errorf("%s shows a hash: %s", how, out)
		}
		if how != "%q" && how != "%x" && !strings.Contains(out, "alice") {
			t.Errorf("%s does not name the user: %s", how, out)
		}
	}
	if got := string(r.Policy.BasicUsers[0].Hash); got != testHash {
		t.Errorf("string(Hash) = %q, want the hash itself", got)
	}
}

func TestSameBasicUsers(t *testing.T) {
	a, b := sameTestRoute(), sameTestRoute()
	a.Policy.BasicUsers = []BasicUser{{Name: "alice", Hash: testHash}}
	b.Policy.BasicUsers = []BasicUser{{Name: "alice", Hash: testHash}}
	if !Same(&a, &b) {
		t.Error("routes with the same users differ")
	}
	b.Policy.BasicUsers = []BasicUser{{Name: "alice", Hash: testHash + "x"}}
	if Same(&a, &b) {
		t.Error("routes whose users' hashes differ are the same: a new password would not reach the edge")
	}
}
