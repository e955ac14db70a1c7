package fault

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/madang-io/madang/protocol"
)

// WriteSummary writes the run's figures and the audit's verdict.
func (res *Result) WriteSummary(w io.Writer) {
	a := res.Audit
	fmt.Fprintf(w, "fault run %s (seed %d), %.0fs\n", res.ID, res.Seed, res.Elapsed.Seconds())
	fmt.Fprintf(w, "  requests   %d logical (%s), %d racing copies, %d frames sent, %d replies lost\n",
		a.Requests, countsOf(a.ByCommand), a.Copies, a.Sends, a.LostReplies)
	fmt.Fprintf(w, "  faults     %d: %s; game server crashes (exits not caused by the run): %d\n",
		len(res.Faults), countsOf(res.FaultKind), res.Crashes)
	fmt.Fprintf(w, "  sessions   %d logins (the first ones, after a session was lost, and a last round), login answers %s, %d lost\n",
		res.Logins, codesOf(res.LoginAnswers), res.LoginLost)
	fmt.Fprintf(w, "  mail       %d operator grants reached every player\n", res.MailRounds)
	fmt.Fprintf(w, "  answers    %s\n", codesOf(a.Answers))
	fmt.Fprintf(w, "  copy ends  %s\n", countsOf(a.Finals))
	fmt.Fprintf(w, "  outcome    %d confirmed (an OK answer), %d refused (a final code, no OK), %d unanswered; %d applied in the databases (%d of them unanswered); %d answered 40 at least once\n",
		a.Confirmed, a.Refused, a.Unanswered, a.Applied, a.AppliedUnanswered, a.InternalAnswers)
	fmt.Fprintf(w, "audit (0 expected everywhere):\n")
	line := func(name string, n int, kind string) {
		fmt.Fprintf(w, "  %-40s %d\n", name, n)
		for _, e := range a.Examples[kind] {
			fmt.Fprintf(w, "      %s\n", e)
		}
	}
	line("lost confirmed answers", a.LostConfirmed, "lost_confirmed")
	fmt.Fprintf(w, "  %-40s %d %s, %d with another copy answered OK\n", "applied but refused (by final code)", a.AppliedButRefused,
		codesOf(a.AppliedButRefusedByCode), a.AppliedButRefusedConfirmed)
	for _, e := range a.Examples["applied_but_refused"] {
		fmt.Fprintf(w, "      %s\n", e)
	}
	line("receipts redeemed, not granted", a.RedeemedNotGranted, "redeemed_not_granted")
	line("applied twice", a.AppliedTwice, "applied_twice")
	line("balances unequal to their ledger", a.BalanceMismatch, "balance_mismatch")
	line("answers unequal to the databases", a.AnswerMismatch, "answer_mismatch")
	line("mails claimed unequal to paid", a.MailMismatch, "mail_mismatch")
	line("answered internal (40), not applied", a.Internal, "internal")
	line("requests unanswered after recovery", a.Unanswered, "unanswered")
	fmt.Fprintf(w, "  %-40s %d\n", "logins answered internal (40)", res.LoginAnswers[protocol.CodeInternal])
	fmt.Fprintf(w, "  %-40s %d\n", "game server crashes", res.Crashes)
	fmt.Fprintf(w, "  %-40s %d\n", "gaps (not exercised)", len(res.Gaps))
	for _, g := range res.Gaps {
		fmt.Fprintf(w, "      %s\n", g)
	}
	if v := res.Violations(); v > 0 {
		fmt.Fprintf(w, "FAIL: %d violations", v)
		if res.Dir != "" {
			fmt.Fprintf(w, " (logs and requests.jsonl in %s)", res.Dir)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "PASS")
	}
}

// joinSorted lists m's entries in key order, each as item(k, n), separated
// by ", ".
func joinSorted[K cmp.Ordered](m map[K]int, item func(k K, n int) string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, item(k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func countsOf(m map[string]int) string {
	return joinSorted(m, func(k string, n int) string { return fmt.Sprintf("%s %d", k, n) })
}

func codesOf(m map[protocol.Code]int) string {
	return "{" + joinSorted(m, func(k protocol.Code, n int) string {
		name := k.String()
		if k < 0 {
			name = "none"
		}
		return fmt.Sprintf("%d %s: %d", int(k), name, n)
	}) + "}"
}
