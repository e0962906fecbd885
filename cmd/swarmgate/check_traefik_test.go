package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// traefikStack is a Traefik v3 Swarm stack written as Traefik's docs write
// them; traefikGolden is what check prints for it. Regenerate the golden
// file with SWARMGATE_UPDATE_GOLDEN=1 go test -run TestCheckTraefikStack.
const (
	traefikStack  = "../../discovery/testdata/traefik-stack.yml"
	traefikGolden = "testdata/traefik-stack.golden"
)

func TestCheckTraefikStack(t *testing.T) {
	out, err := runCheck(t, "", "--labels", "swarmgate,interlock,traefik", traefikStack)
	// Two services of the stack are skipped: Traefik's own dashboard (its
	// service is api@internal) and a router that matches on the method.
	// whoami's inline users (MD5) are served, with a warning each.
	if err == nil || err.Error() != "check: 2 invalid label(s) in 2 service(s)" {
		t.Errorf("err = %v, want the two skipped services", err)
	}
	js, _ := runCheck(t, "", "--labels", "swarmgate,interlock,traefik", "-o", "json", traefikStack)
	for _, hash := range []string{"H6uskkkW", "IgXLP6ewTrSuBkTrqE8wj", "d9hr9HBB", "4HxwgUir3HP4EsggP"} {
		if strings.Contains(out, hash) || strings.Contains(js, hash) {
			t.Errorf("check shows a password hash (%s):\n%s\n%s", hash, out, js)
		}
	}
	if !strings.Contains(out, "auth.users(test test2)") || !strings.Contains(js, `"auth.users(test test2)"`) {
		t.Errorf("check does not name whoami's users:\n%s\n%s", out, js)
	}
	if os.Getenv("SWARMGATE_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(traefikGolden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(traefikGolden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("check output differs from %s:\n--- got\n%s\n--- want\n%s", traefikGolden, out, want)
	}
}

// Without traefik in --labels the Traefik labels are not read: what is left
// is redis's swarmgate.routes.redis.tcp.port, a route with no port.
func TestCheckTraefikStackNeedsTheDialect(t *testing.T) {
	out, err := runCheck(t, "", "--output", "json", traefikStack)
	if err == nil {
		t.Fatalf("check: no error\n%s", out)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Routes) != 0 || len(rep.Errors) != 1 || rep.Errors[0].Service != "redis" || rep.Errors[0].Label != "swarmgate.routes.redis.port" {
		t.Errorf("default dialects: got routes %+v, errors %+v; want only redis's missing port", rep.Routes, rep.Errors)
	}
}

func TestCheckLabelsFlag(t *testing.T) {
	_, err := runCheck(t, "", "--labels", "swarmgate,nginx", traefikStack)
	if err == nil || !strings.Contains(err.Error(), `label dialect "nginx"`) {
		t.Errorf("err = %v, want the unknown dialect named", err)
	}
}

// Every example of docs/traefik-labels.md runs (runDocExamples).
func TestTraefikLabelsDoc(t *testing.T) {
	runDocExamples(t, filepath.Join("..", "..", "docs", "traefik-labels.md"))
}
