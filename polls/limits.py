"""Bounds on what a stranger can make grow, named once (settings hold the ones an operator
tunes; these are the product's fixed rules)."""

# A phone's message budget: a steady rate with a burst on top (answers, changes, pings).
MESSAGES_PER_SECOND = 5
MESSAGE_BURST = 20
# Messages refused for the budget before a socket counts as abusive and is closed.
MOST_STRIKES = 50
# A word longer than this cannot have been counted (answers are shorter): nothing to hide.
LONGEST_HIDDEN_WORD = 200
# Message budgets the HTTP fallback keeps per server process (a POST has no line to hold one):
# enough for every phone of a big hall; the least recently used is forgotten (and starts full).
MOST_KEPT_BUDGETS = 20_000
