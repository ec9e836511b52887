-- One row per accident (raw.caracteristics): when, where, light and weather.
with source as (
    select * from {{ source('raw', 'caracteristics') }}
),

renamed as (
    select
        Num_Acc as num_acc,
        {{ four_digit_year('an') }} as accident_year,
        mois as month,
        jour as day,
        hrmn as hrmn_raw,
        {{ hour_from_hrmn('hrmn') }} as hour,
        {{ minute_from_hrmn('hrmn') }} as minute,
        lum as lighting_code,
        agg as built_up_area_code,
        nullif("int", 0) as intersection_code,
        atm as weather_code,
        col as collision_code,
        com as commune_raw,
        nullif({{ trim_spaces('adr') }}, '') as address,
        gps as gps_zone_code,
        {{ signed_latitude(degrees_from_raw('lat'), department_code('dep')) }} as reported_latitude,
        {{ signed_longitude(degrees_from_raw('long'), department_code('dep')) }} as reported_longitude,
        dep as department_raw,
        {{ department_code('dep') }} as department_code,
        source_file,
        loaded_at
    from source
),

dated as (
    select
        *,
        -- An impossible date (30 February) is NULL, not a failed build.
        {{ safe_make_date('accident_year', 'month', 'day') }} as accident_date,
        case
            when hour is not null then {{ safe_make_timestamp('accident_year', 'month', 'day', 'hour', 'minute') }}
        end as accident_at
    from renamed
)

select * from dated
