-- Accident-level split shares are 60 / 20 / 20 within sampling noise: a hash split puts
-- each accident in a split with those probabilities, so a share may stray from its target
-- by a few standard errors of a binomial proportion (4 by default), no more. The bound
-- tightens with the data: about 4 points on the 2,237 sample accidents, 0.2 at national
-- scale, where a boundary moved by one bucket (1 point) fails it.
{%- set sigmas = var('split_share_tolerance_sigmas') %}
with counts as (
    select
        split,
        count(*) as accidents,
        sum(count(*)) over () as total
    from {{ ref('int_accident_splits') }}
    group by split
),

expected as (
    select
        'train' as split,
        {{ var('split_train_percent') }} as share
    union all
    select
        'validation' as split,
        {{ var('split_validation_percent') }} as share
    union all
    select
        'test' as split,
        {{ 100 - var('split_train_percent') - var('split_validation_percent') }} as share
),

compared as (
    select
        expected.split,
        expected.share as expected_share,
        100.0 * counts.accidents / counts.total as actual_share,
        {{ sigmas }} * 100.0 * sqrt(
            (expected.share / 100.0) * (1 - expected.share / 100.0) / counts.total
        ) as tolerance
    from expected
    left join counts on expected.split = counts.split
)

select *
from compared
where actual_share is null or abs(actual_share - expected_share) > tolerance
