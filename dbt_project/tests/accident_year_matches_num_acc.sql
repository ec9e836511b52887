-- The year read from `an` (2-digit) agrees with the first four digits of Num_Acc, the other
-- place the files record it (raw lineage and stg_users use the latter).
select
    num_acc,
    accident_year
from {{ ref('stg_accidents') }}
where accident_year <> {{ accident_year_from_num_acc('num_acc') }}
