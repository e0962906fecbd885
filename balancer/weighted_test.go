package balancer

import (
	"slices"
	"sync"
	"testing"
)

func TestWeightedExactAndInterleaved(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		maxRun  []int // longest run of each item; 0 skips the check
	}{
		{"90/10", []int{90, 10}, []int{9, 1}},
		{"50/50", []int{50, 50}, []int{1, 1}},
		{"100/0", []int{100, 0}, nil},
		{"0/100", []int{0, 100}, nil},
		{"1/2/3", []int{1, 2, 3}, []int{1, 1, 2}},
		{"default weights", []int{100, 100, 100}, []int{1, 1, 1}},
		{"drained middle", []int{30, 0, 70}, []int{1, 0, 3}},
		{"negative drains", []int{-5, 10}, nil},
		{"coprime", []int{7, 3}, []int{3, 1}},
		{"large", []int{10000, 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := make([]int, len(tt.weights))
			for i := range items {
				items[i] = i
			}
			w := NewWeighted(items, tt.weights)
			sum := 0
			for _, x := range tt.weights {
				sum += max(x, 0)
			}
			// Three windows, each starting where the last ended, and one
			// that starts off the cycle's boundary.
			var seq []int
			for range 3*sum + 7 {
				v, ok := w.Pick()
				if !ok {
					t.Fatal("Pick returned false with live items")
				}
				seq = append(seq, v)
			}
			for _, start := range []int{0, sum, 2 * sum, 7} {
				count := make([]int, len(items))
				for _, v := range seq[start : start+sum] {
					count[v]++
				}
				for i, x := range tt.weights {
					if count[i] != max(x, 0) {
						t.Fatalf("window at %d: item %d picked %d times, want %d", start, i, count[i], max(x, 0))
					}
				}
			}
			for i, limit := range tt.maxRun {
				if limit == 0 {
					continue
				}
				if got := longestRun(seq, i); got > limit {
					t.Errorf("item %d ran %d picks in a row, want at most %d", i, got, limit)
				}
			}
		})
	}
}

func longestRun(seq []int, v int) int {
	best, run := 0, 0
	for _, x := range seq {
		if x == v {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

func TestWeightedAllDrained(t *testing.T) {
	for _, w := range []*Weighted[string]{
		NewWeighted([]string{"a", "b"}, []int{0, 0}),
		NewWeighted([]string{}, []int{}),
	} {
		if v, ok := w.Pick(); ok || v != "" {
			t.Errorf("Pick = %q, %v; want \"\", false", v, ok)
		}
		if len(w.Order()) != 0 {
			t.Errorf("Order = %v, want empty", w.Order())
		}
	}
}

func TestWeightedOrder(t *testing.T) {
	w := NewWeighted([]string{"a", "b", "c", "d", "e"}, []int{10, 0, 90, 10, -1})
	if got, want := w.Order(), []string{"c", "a", "d"}; !slices.Equal(got, want) {
		t.Fatalf("Order = %v, want %v", got, want)
	}
}

func TestWeightedScaledDown(t *testing.T) {
	// Reduced sum 20,000 exceeds the schedule bound; shares stay close and
	// the smallest live item is still picked.
	w := NewWeighted([]string{"a", "b", "c"}, []int{10000, 9999, 1})
	count := map[string]int{}
	for range maxSchedule {
		v, _ := w.Pick()
		count[v]++
	}
	if count["c"] == 0 {
		t.Fatal("weight 1 never picked after scaling")
	}
	for k, share := range map[string]float64{"a": 0.5, "b": 0.5} {
		if got := float64(count[k]) / maxSchedule; got < share-0.01 || got > share+0.01 {
			t.Errorf("%s share %.4f, want %.2f", k, got, share)
		}
	}
}

func TestWeightedConcurrentExact(t *testing.T) {
	w := NewWeighted([]int{0, 1, 2}, []int{90, 9, 1})
	const goroutines, each = 8, 1000 // 8,000 picks: 80 whole cycles of 100
	counts := make([][3]int, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range each {
				v, _ := w.Pick()
				counts[g][v]++
			}
		})
	}
	wg.Wait()
	var total [3]int
	for _, c := range counts {
		for i := range c {
			total[i] += c[i]
		}
	}
	if total != [3]int{7200, 720, 80} {
		t.Fatalf("picks %v, want [7200 720 80]", total)
	}
}

func TestWeightedLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for 2 items and 1 weight")
		}
	}()
	NewWeighted([]string{"a", "b"}, []int{1})
}
