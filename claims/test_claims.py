"""Every claim of the plan (``--workload``, ``--profile``) as a test: one per claim and parameter set.

What each claim says, where it comes from, its bound, its statistical test and what would turn it red are in
its registration (reproduction/claims/); ``judge`` applies the outcome rule the report uses (claims.status).
"""


def test_claim(claim_params, verdicts_of, judge):
    claim_id, params = claim_params
    judge(verdicts_of(claim_id)[params])
