package balancer

import (
	"fmt"
	"slices"
	"sync/atomic"
)

// maxSchedule bounds the memory of one Weighted. Weights whose reduced sum
// exceeds it are scaled down to it, and shares are exact to 1/maxSchedule.
const maxSchedule = 1 << 14

// Weighted splits traffic among items by integer weight: the services of a
// canary or blue-green group that publish the same host and path.
//
// It precomputes one cycle of smooth weighted round-robin (the interleaving
// NGINX uses): with weights reduced by their greatest common divisor to a
// sum S, every S consecutive picks give each item exactly its share, spread
// out rather than in runs. Pick walks the cycle with an atomic counter, so
// it is lock-free and allocation-free.
type Weighted[T any] struct {
	items []T
	cycle []uint32 // indexes into items, one cycle of the schedule
	order []T      // items with weight > 0, heaviest first
	next  atomic.Uint64
}

// NewWeighted returns a Weighted over items. weights must have the same
// length as items; a weight of 0 or less drains the item: it is never
// picked. It panics on mismatched lengths, which is a programming error.
func NewWeighted[T any](items []T, weights []int) *Weighted[T] {
	if len(items) != len(weights) {
		panic(fmt.Sprintf("balancer: NewWeighted: %d items but %d weights", len(items), len(weights)))
	}
	w := make([]int64, len(weights))
	var g int64
	for i, x := range weights {
		if x > 0 {
			w[i] = int64(x)
			g = gcd(g, w[i])
		}
	}
	var sum int64
	for i := range w {
		if g > 0 {
			w[i] /= g
		}
		sum += w[i]
	}
	if sum > maxSchedule {
		// Scale down, keeping every live item at least 1.
		scaled := int64(0)
		for i := range w {
			if w[i] > 0 {
				w[i] = max(1, w[i]*maxSchedule/sum)
				scaled += w[i]
			}
		}
		sum = scaled
	}

	wt := &Weighted[T]{items: slices.Clone(items), cycle: make([]uint32, sum)}
	// Smooth weighted round-robin: every step each item gains its weight,
	// the richest is picked and pays the total. Ties go to the first item.
	cur := make([]int64, len(w))
	for s := range wt.cycle {
		best := -1
		for i := range w {
			if w[i] == 0 {
				continue
			}
			cur[i] += w[i]
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		wt.cycle[s] = uint32(best)
	}

	idx := make([]int, 0, len(items))
	for i := range items {
		if weights[i] > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return weights[b] - weights[a] })
	for _, i := range idx {
		wt.order = append(wt.order, wt.items[i])
	}
	return wt
}

// Pick returns the next item of the schedule, or false when every item is
// drained.
func (w *Weighted[T]) Pick() (T, bool) {
	if len(w.cycle) == 0 {
		var zero T
		return zero, false
	}
	n := w.next.Add(1) - 1
	return w.items[w.cycle[n%uint64(len(w.cycle))]], true
}

// Order returns the items that are not drained, heaviest first (ties in the
// order given). It is what to try, skipping the one Pick chose, when that
// item has no available endpoint. The slice is shared: do not modify it.
func (w *Weighted[T]) Order() []T { return w.order }

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
