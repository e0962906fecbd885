package route

import (
	"testing"
	"time"
)

func TestHTTPByAge(t *testing.T) {
	c := Config{Routes: []Route{
		{Service: "new", Hosts: []string{"a.example"}, CreatedAt: time.Unix(3, 0)},
		{Service: "tcp", TCPPort: 5432, CreatedAt: time.Unix(1, 0)},
		{Service: "old-b", Hosts: []string{"b.example"}, CreatedAt: time.Unix(2, 0)},
		{Service: "old-a", Hosts: []string{"c.example"}, CreatedAt: time.Unix(2, 0)},
	}}
	var got []string
	for _, r := range c.HTTPByAge() {
		got = append(got, r.Service)
	}
	if want := []string{"old-a", "old-b", "new"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("HTTPByAge = %v, want %v (HTTP only, oldest first, then by ID)", got, want)
	}
	if c.HTTPByAge()[0] != &c.Routes[3] {
		t.Fatal("HTTPByAge copies the routes; want pointers into the Config")
	}
}
