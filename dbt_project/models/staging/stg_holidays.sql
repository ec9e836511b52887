-- French public holidays (the Kaggle file, 2005-2016), one row per date: two holidays can
-- fall on one day (Ascension was on 1 May in 2008), and their names are then joined.
select
    ds as holiday_date,
    string_agg(holiday, ' / ' order by holiday) as holiday_name
from {{ source('raw', 'holidays') }}
group by ds
