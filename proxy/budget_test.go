package proxy

import (
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestRetryBudget(t *testing.T) {
	clk := testkit.NewClock()
	var b retryBudget
	// A fresh budget holds the floor: 10 retries.
	got := 0
	for b.withdraw(clk.Now()) {
		got++
	}
	if got != budgetFloor {
		t.Fatalf("fresh budget allowed %d retries, want %d", got, budgetFloor)
	}
	// 100 requests earn 20 retries.
	for range 100 {
		b.deposit()
	}
	got = 0
	for b.withdraw(clk.Now()) {
		got++
	}
	if got != 20 {
		t.Fatalf("100 requests earned %d retries, want 20", got)
	}
	// Half a second of nothing refills half the floor.
	clk.Advance(500 * time.Millisecond)
	got = 0
	for b.withdraw(clk.Now()) {
		got++
	}
	if got != budgetFloor/2 {
		t.Fatalf("0.5 s refilled %d retries, want %d", got, budgetFloor/2)
	}
	// The budget is capped.
	for range 10 * budgetCap {
		b.deposit()
	}
	if v := b.tokens.Load(); v > budgetCap+budgetRatio {
		t.Fatalf("budget grew to %d, cap %d", v, budgetCap)
	}
}
