"""Pick up from Slack (SPEC second edition, "Acting from anywhere"): the interactions
endpoint's signature check and replay guard (``signature``), the payload as Baton reads
it (``interaction``), and the press answered in the background (``pickup``)."""
