-- One row per accident: its day of the week and its place in the holiday calendar.
with accidents as (
    select num_acc, accident_date from {{ ref('stg_accidents') }}
),

holidays as (
    select holiday_date, holiday_name from {{ ref('stg_holidays') }}
)

select
    accidents.num_acc,
    isodow(accidents.accident_date) as day_of_week,
    isodow(accidents.accident_date) >= 6 as is_weekend,
    today.holiday_date is not null as is_public_holiday,
    today.holiday_name,
    tomorrow.holiday_date is not null as is_holiday_eve
from accidents
left join holidays as today on accidents.accident_date = today.holiday_date
left join holidays as tomorrow on accidents.accident_date + interval 1 day = tomorrow.holiday_date
