"""Library behind the PEFT benchmark pipeline: every stage's logic lives here; scripts stay thin."""
