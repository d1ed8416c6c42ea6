package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Outcome is what became of one testcase.
type Outcome int

const (
	Passed Outcome = iota
	// Failed is a <failure> (failed, timedout, aborted) or an <error> (interrupted, panicked).
	Failed
	// NotRun is a <skipped> spec that never started: left out by focus or skip, or pending.
	NotRun
	// SkippedAtRunTime is a <skipped> spec that started and skipped itself, saying why (e2eskipper.Skipf).
	SkippedAtRunTime
)

// Case is one testcase of the report.
type Case struct {
	Name    string
	Outcome Outcome
	// Message is the failure's message attribute (or its text when the attribute is empty), or why the
	// spec skipped itself.
	Message string
	// Suite marks ginkgo's suite nodes ([SynchronizedBeforeSuite], [ReportAfterSuite] …), which are not specs.
	Suite bool
}

// Summary is a parsed report: every testcase in order and the run's duration.
type Summary struct {
	Cases    []Case
	Duration time.Duration
}

// Count is the number of specs (suite nodes left out) with the outcome.
func (s Summary) Count(o Outcome) int {
	n := 0
	for _, c := range s.Cases {
		if !c.Suite && c.Outcome == o {
			n++
		}
	}
	return n
}

// Skipped is the number of specs that did not run to the end: not run, or skipped at run time.
func (s Summary) Skipped() int { return s.Count(NotRun) + s.Count(SkippedAtRunTime) }

// Specs is the number of specs, suite nodes left out.
func (s Summary) Specs() int {
	n := 0
	for _, c := range s.Cases {
		if !c.Suite {
			n++
		}
	}
	return n
}

// Failures are the failed cases, suite nodes included: a failed [SynchronizedBeforeSuite] is why every spec
// was skipped.
func (s Summary) Failures() []Case { return s.with(Failed) }

// SkippedAtRunTime are the specs that skipped themselves: in a conformance run, specs that did not test
// what they were selected for.
func (s Summary) SkippedAtRunTime() []Case { return s.with(SkippedAtRunTime) }

func (s Summary) with(o Outcome) []Case {
	var out []Case
	for _, c := range s.Cases {
		if c.Outcome == o {
			out = append(out, c)
		}
	}
	return out
}

// Tally is the run in one line.
func (s Summary) Tally() string {
	line := fmt.Sprintf("%d passed, %d failed, %d skipped (%d at run time) of %d specs in %s",
		s.Count(Passed), s.Count(Failed), s.Skipped(), s.Count(SkippedAtRunTime), s.Specs(), s.Duration)
	if n := len(s.Failures()) - s.Count(Failed); n > 0 {
		line += fmt.Sprintf("; %d suite nodes failed", n)
	}
	return line
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Time    float64      `xml:"time,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Time  float64     `xml:"time,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Skipped *junitMessage `xml:"skipped"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// Parse reads a JUnit report as ginkgo v2 writes it: <testsuites> of <testsuite> of <testcase>.
func Parse(r io.Reader) (Summary, error) {
	var doc junitSuites
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return Summary{}, fmt.Errorf("not a JUnit report: %w", err)
	}
	var s Summary
	var suiteTime float64
	for _, suite := range doc.Suites {
		suiteTime += suite.Time
		for _, tc := range suite.Cases {
			s.Cases = append(s.Cases, newCase(tc))
		}
	}
	secs := doc.Time
	if secs == 0 {
		secs = suiteTime
	}
	s.Duration = time.Duration(secs * float64(time.Second)).Round(time.Second)
	return s, nil
}

func newCase(tc junitCase) Case {
	// Ginkgo names a spec "[It] <text> [labels]", a suite node "[SynchronizedBeforeSuite]" and the like.
	name, isSpec := strings.CutPrefix(tc.Name, "[It] ")
	c := Case{Name: name, Suite: !isSpec}
	switch fail := firstOf(tc.Failure, tc.Error); {
	case fail != nil:
		c.Outcome, c.Message = Failed, fail.Message
		if strings.TrimSpace(c.Message) == "" {
			c.Message = fail.Text
		}
	case tc.Skipped != nil:
		// Ginkgo writes "skipped" for a spec it did not run, "pending" for a pending one, and
		// "skipped - REASON" for one that skipped itself.
		reason, ranFirst := strings.CutPrefix(tc.Skipped.Message, "skipped - ")
		c.Outcome = NotRun
		if ranFirst {
			c.Outcome, c.Message = SkippedAtRunTime, reason
		}
	}
	return c
}

func firstOf(ms ...*junitMessage) *junitMessage {
	for _, m := range ms {
		if m != nil {
			return m
		}
	}
	return nil
}
