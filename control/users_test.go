package control

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/swarmgate/swarmgate/route"
)

// Inline basic-auth users reach the edge with their hashes: the policy's
// JSON withholds them (route.Secret), the wire's users field carries them.
func TestWireCarriesBasicUsers(t *testing.T) {
	const hash = "$2y$05$2ZIl1Zlu4GJ4qyMbbI4k3O8fBHU5xSo3OWgzhTLFa.kjLrA7qrKDa"
	r := route.Route{Service: "admin", Hosts: []string{"admin.example.org"}, Path: "/", Port: 80, Weight: 100,
		Policy: &route.Policy{BasicUsers: []route.BasicUser{{Name: "alice", Hash: hash}}}}
	raw, err := json.Marshal(toWire(&r))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(raw, []byte(hash)); n != 1 {
		t.Errorf("the wire holds the hash %d times, want once (in users): %s", n, raw)
	}
	var w wireRoute
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	got := fromWire(&w)
	if got.Policy == nil || len(got.Policy.BasicUsers) != 1 || got.Policy.BasicUsers[0] != r.Policy.BasicUsers[0] {
		t.Errorf("after the wire: %+v, want alice with her hash", got.Policy)
	}
}
