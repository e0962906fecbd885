package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/rollout"
)

func TestParseSteps(t *testing.T) {
	if got, err := parseSteps("1, 5,25,50,100"); err != nil || len(got) != 5 || got[1] != 5 {
		t.Fatalf("parseSteps = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,x,100", "5,1,100", "10,50"} {
		if _, err := parseSteps(bad); err == nil {
			t.Errorf("parseSteps(%q) accepted", bad)
		}
	}
}

// TestRolloutPrinter: the text and JSON lines of a step and of each end.
func TestRolloutPrinter(t *testing.T) {
	step := rollout.Step{N: 2, Of: 5, Percent: 5, OldWeight: 95, NewWeight: 5,
		Old: rollout.Stats{Requests: 950}, NewStats: rollout.Stats{Requests: 50, Errors: 10},
		OldP99: 0.012, NewP99: math.NaN(), OldRatio: 0, NewRatio: 0.2,
		Verdict: rollout.Verdict{Reason: "NEW error ratio 0.2000 above 0.0100 (10 of 50 requests)"}}
	var text bytes.Buffer
	p := &rolloutPrinter{w: &text, old: "web-v1", new: "web-v2"}
	p.step(step)
	p.end(rollout.Result{OldWeight: 100, NewWeight: 0}, errors.Join(rollout.ErrRolledBack))
	want := "step 2/5: web-v1 95, web-v2 5 | web-v1: 950 requests, 0.00% errors, p99 12ms | web-v2: 50 requests, 20.00% errors, p99 - | FAILED: NEW error ratio 0.2000 above 0.0100 (10 of 50 requests)\n" +
		"rolled back: web-v1 100, web-v2 0\n"
	if text.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", text.String(), want)
	}
	var js bytes.Buffer
	p = &rolloutPrinter{w: &js, json: true, old: "web-v1", new: "web-v2"}
	p.step(step)
	p.end(rollout.Result{OldWeight: 95, NewWeight: 5}, rollout.ErrInterrupted)
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines: %s", len(lines), js.String())
	}
	var s stepLine
	var e endLine
	if err := json.Unmarshal([]byte(lines[0]), &s); err != nil || s.Event != "step" || s.NewErrRatio != 0.2 || s.NewP99 != nil || *s.OldP99 != 0.012 || s.OK {
		t.Errorf("step line %s: %+v %v", lines[0], s, err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Event != "interrupted" || e.OldWeight != 95 || e.NewWeight != 5 {
		t.Errorf("end line %s: %+v %v", lines[1], e, err)
	}
}
