-- One row per accident: its day of the week and its place in the holiday calendar. The
-- holiday file covers 2005-2016: for a day of a year it does not cover, the flags are NULL
-- (unknown), not false.
with accidents as (
    select
        num_acc,
        accident_date
    from {{ ref('stg_accidents') }}
),

holidays as (
    select
        holiday_date,
        holiday_name
    from {{ ref('stg_holidays') }}
),

covered_years as (
    select distinct {{ year_of('holiday_date') }} as covered_year from holidays
)

select
    accidents.num_acc,
    {{ iso_day_of_week('accidents.accident_date') }} as day_of_week,
    {{ iso_day_of_week('accidents.accident_date') }} >= 6 as is_weekend,
    case when this_year.covered_year is not null then today.holiday_date is not null end as is_public_holiday,
    today.holiday_name,
    case when next_day_year.covered_year is not null then tomorrow.holiday_date is not null end as is_holiday_eve
from accidents
left join holidays as today on accidents.accident_date = today.holiday_date
left join holidays as tomorrow on {{ dbt.dateadd('day', 1, 'accidents.accident_date') }} = tomorrow.holiday_date
left join covered_years as this_year on {{ year_of('accidents.accident_date') }} = this_year.covered_year
left join covered_years as next_day_year
    on {{ year_of(dbt.dateadd('day', 1, 'accidents.accident_date')) }} = next_day_year.covered_year
