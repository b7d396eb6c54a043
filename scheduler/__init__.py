"""What is due when: pure functions of the data and a clock, and the JobQueue wiring."""
