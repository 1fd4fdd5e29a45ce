"""An event's record for hosts, in three parts: ``data`` (every question's result and the
answers, from the Answer rows), ``presentation`` (how it reads: numbers in the event's
language, research beside the lines) and ``writers`` (CSV and XLSX files)."""
