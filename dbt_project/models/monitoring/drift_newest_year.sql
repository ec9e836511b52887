-- Per feature: how far the newest loaded accident year has moved from the earlier years'
-- train rows (what a champion trained before it arrived learnt from), as a PSI. With a single
-- year loaded there is nothing to compare: no rows.
with road_users as (
    select
        *,
        {{ accident_year_from_num_acc('num_acc') }} as accident_year
    from {{ ref('ml_features') }}
),

years as (
    select
        min(accident_year) as first_year,
        max(accident_year) as newest_year
    from road_users
),

earlier_train_rows as (
    select road_users.*
    from road_users
    cross join years
    where road_users.split = 'train' and road_users.accident_year < years.newest_year
),

newest_year_rows as (
    select road_users.*
    from road_users
    cross join years
    where road_users.accident_year = years.newest_year and years.first_year < years.newest_year
),

reference as (
    {{- feature_values_long('earlier_train_rows') }}
),

compared as (
    {{- feature_values_long('newest_year_rows', ['accident_year']) }}
),

reference_rows as (
    select count(*) as reference_rows
    from earlier_train_rows
),

{{ psi_ctes('reference', 'compared', ['accident_year']) }}

select
    psi.accident_year as newest_year,
    cast(years.first_year as varchar) || '-' || cast(years.newest_year - 1 as varchar) as reference_years,
    psi.feature,
    psi.feature_kind,
    psi.compared_rows as newest_year_rows,
    reference_rows.reference_rows,
    round(psi.psi, 6) as psi,
    psi.largest_shift_bin,
    round(psi.largest_shift_reference_share, 6) as largest_shift_reference_share,
    round(psi.largest_shift_compared_share, 6) as largest_shift_newest_share,
    {{ psi_alert_threshold() }} as alert_threshold,
    psi.psi > {{ psi_alert_threshold() }} as is_above_threshold
from psi
cross join years
cross join reference_rows
order by psi.feature
