-- The inputs of the baseline that reproduces the project we replace: its 16 columns, taken
-- as plain numbers by a random forest, on the same rows, target and split as ml_features.
select
    num_acc,
    split,
    severity,
    accident_year,
    month,
    hour,
    minute,
    user_category_code,
    sex_code,
    birth_year,
    trip_purpose_code,
    secu_raw,
    lighting_code,
    weather_code,
    road_category_code,
    surface_condition_code,
    latitude,
    longitude,
    cast(is_public_holiday as integer) as is_public_holiday
from {{ ref('fct_road_users') }}
