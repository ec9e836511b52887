-- Severity of road users by accident year and département.
select
    accident_year,
    department_code,
    department,
    {{ severity_measures() }}
from {{ ref('fct_road_users') }}
group by accident_year, department_code, department
