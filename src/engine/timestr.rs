//! duplicity's time strings: now, epoch seconds, w3 datetimes, intervals and dates.
