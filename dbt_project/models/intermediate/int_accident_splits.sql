-- One row per accident: its split (train / validation / test) and whether it belongs to the
-- latest loaded year (for out-of-time evaluation). The split depends on Num_Acc alone, so
-- every user of an accident shares it and no accident ever changes split.
with accidents as (
    select
        num_acc,
        accident_year
    from {{ ref('stg_accidents') }}
),

bucketed as (
    select
        num_acc,
        accident_year,
        {{ split_bucket('num_acc') }} as split_bucket
    from accidents
)

select
    num_acc,
    accident_year,
    split_bucket,
    {{ split_from_bucket('split_bucket') }} as split,
    accident_year = max(accident_year) over () as is_latest_year
from bucketed
