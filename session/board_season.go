package session

import (
	"fmt"
	"strconv"
	"time"
)

// SeasonPeriod is how a board's seasons follow each other.
type SeasonPeriod uint8

// The periods. Days, weeks and months begin at midnight in
// BoardConfig.Location.
const (
	// SeasonDaily: one season per calendar day, id "d" + YYYYMMDD.
	SeasonDaily SeasonPeriod = iota
	// SeasonWeekly: one season per week starting on BoardConfig.WeekStart
	// (Sunday by default), id "w" + YYYYMMDD of the week's first day.
	SeasonWeekly
	// SeasonMonthly: one season per calendar month, id "m" + YYYYMM.
	SeasonMonthly
	// SeasonCustom: the seasons listed in BoardConfig.Seasons, ids as given.
	SeasonCustom
)

// String returns "daily", "weekly", "monthly" or "custom".
func (p SeasonPeriod) String() string {
	switch p {
	case SeasonDaily:
		return "daily"
	case SeasonWeekly:
		return "weekly"
	case SeasonMonthly:
		return "monthly"
	case SeasonCustom:
		return "custom"
	}
	return "period(" + strconv.Itoa(int(p)) + ")"
}

// Season is one period of a board: its data lives under its own key.
type Season struct {
	ID    string    // part of the key; 1..BoardMaxNameLen of [A-Za-z0-9_.-]
	Start time.Time // first instant of the season
	End   time.Time // first instant after it
}

// seasonAt returns the season of period p containing t.
func seasonAt(p SeasonPeriod, loc *time.Location, weekStart time.Weekday, custom []Season, t time.Time) (Season, error) {
	lt := t.In(loc)
	y, m, d := lt.Date()
	switch p {
	case SeasonDaily:
		start := time.Date(y, m, d, 0, 0, 0, 0, loc)
		return Season{ID: "d" + start.Format("20060102"), Start: start, End: time.Date(y, m, d+1, 0, 0, 0, 0, loc)}, nil
	case SeasonWeekly:
		back := (int(lt.Weekday()) - int(weekStart) + 7) % 7
		start := time.Date(y, m, d-back, 0, 0, 0, 0, loc)
		sy, sm, sd := start.Date()
		return Season{ID: "w" + start.Format("20060102"), Start: start, End: time.Date(sy, sm, sd+7, 0, 0, 0, 0, loc)}, nil
	case SeasonMonthly:
		start := time.Date(y, m, 1, 0, 0, 0, 0, loc)
		return Season{ID: "m" + start.Format("200601"), Start: start, End: time.Date(y, m+1, 1, 0, 0, 0, 0, loc)}, nil
	case SeasonCustom:
		for _, s := range custom {
			if !t.Before(s.Start) && t.Before(s.End) {
				return s, nil
			}
		}
		return Season{}, fmt.Errorf("%w: no season at %v", ErrSeasonClosed, t.UTC().Format(time.RFC3339))
	}
	return Season{}, fmt.Errorf("%w: period %d", ErrBoardInvalid, p)
}
