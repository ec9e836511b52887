-- Accident-level split shares are within the tolerance of 60 / 20 / 20.
{%- set tolerance = var('split_share_tolerance_points') %}
with shares as (
    select split, 100.0 * count(*) / sum(count(*)) over () as share
    from {{ ref('int_accident_splits') }}
    group by split
),

expected as (
    select * from (values
        ('train', {{ var('split_train_percent') }}),
        ('validation', {{ var('split_validation_percent') }}),
        ('test', {{ 100 - var('split_train_percent') - var('split_validation_percent') }})
    ) as t(split, share)
)

select expected.split, expected.share as expected_share, shares.share as actual_share
from expected
left join shares on expected.split = shares.split
where shares.share is null or abs(shares.share - expected.share) > {{ tolerance }}
